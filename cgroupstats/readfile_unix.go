//go:build unix

package cgroupstats

import (
	"io/fs"
	"syscall"
)

// readFile reads a whole file as os.ReadFile does, in fewer system calls:
// os.Open registers a cgroup file with the poller (kernfs files can be
// polled) and os.ReadFile stats it for a size the kernel gives as 4096
// anyway. With open, read to the end and close only, one figure costs
// about 40% less on a real kernel; Read makes a dozen of these per
// container. The contents go to buf's array where it is large enough, so
// that one buffer serves a whole Read.
func readFile(path string, buf []byte) ([]byte, error) {
	fd, err := openRetrying(path)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer syscall.Close(fd)
	buf = buf[:0]
	if cap(buf) == 0 {
		buf = make([]byte, 0, 512)
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := syscall.Read(fd, buf[len(buf):cap(buf)])
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil:
			return nil, &fs.PathError{Op: "read", Path: path, Err: err}
		case n == 0:
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}

func openRetrying(path string) (int, error) {
	for {
		fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != syscall.EINTR {
			return fd, err
		}
	}
}
