// Package freeport finds a loopback address for a test's server to listen
// on.
package freeport

import (
	"net"
	"testing"
)

// Addr returns a loopback address with a port nobody listened on a moment
// ago. Another process may take it before the caller binds it: a server
// that fails with "address already in use" should be started again on
// another.
func Addr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
