package fakeengine

import (
	"context"
	"errors"
	"time"
)

// The faults below take effect at once for new requests and stream items;
// streams end asynchronously, after the events already queued on them.

// malformedLine is a line no JSON decoder accepts.
const malformedLine = "{\"Type\":\"container\",\"Action\":start,,}\n"

// DropStreams ends every open /events stream cleanly: the client reads EOF.
func (e *Engine) DropStreams() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.endStreams(endClean)
}

// BreakStreamsMidLine writes half an event on every open stream and cuts
// its connection: the client's decoder fails on an unexpected EOF.
func (e *Engine) BreakStreamsMidLine() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.endStreams(endBreak)
}

// StallStreams, while on, stops every /events stream from writing to its
// client, as if the client had stopped reading: events pile up in the
// stream's buffer and, once it is full, are dropped after DropTimeout, as
// dockerd drops them. Off, the streams write what they kept.
func (e *Engine) StallStreams(on bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if on && e.stalled.Load() == nil {
		ch := make(chan struct{})
		e.stalled.Store(&ch)
	} else if stall := e.stalled.Swap(nil); !on && stall != nil {
		close(*stall)
	}
}

// MuteStreams, while on, keeps events from the open streams: they are kept
// for a later `since` replay but never sent. It is a loss without the
// lateness around dockerd's drops, for what only a periodic resync can find.
func (e *Engine) MuteStreams(on bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.muted = on
}

// SendMalformed writes a line of invalid JSON on every open stream, which
// stays open: the client's decoder fails on it.
func (e *Engine) SendMalformed() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for s := range e.streams {
		e.send(s, item{line: []byte(malformedLine)})
	}
}

// FailList makes the container list answer status with a JSON message;
// 0 restores it.
func (e *Engine) FailList(status int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.failList = status
}

// FailInspect makes every inspect answer status with a JSON message; 0
// restores it.
func (e *Engine) FailInspect(status int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.failInspect = status
}

// setHang must be called with e.mu held.
func setHang(hang *chan struct{}, on bool) {
	switch {
	case on && *hang == nil:
		*hang = make(chan struct{})
	case !on && *hang != nil:
		close(*hang) // the waiting requests go on
		*hang = nil
	}
}

// HangList makes container lists wait, until the client gives up or the
// hang is lifted, when they go on.
func (e *Engine) HangList(on bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	setHang(&e.hangList, on)
}

// HangInspect makes inspects wait, until the client gives up or the hang
// is lifted, when they go on.
func (e *Engine) HangInspect(on bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	setHang(&e.hangInspect, on)
}

// VanishBetweenListAndInspect keeps a container in lists but answers its
// inspect with 404, as when it is removed between the two; the client
// reports errdefs NotFound. It lasts until ClearFaults or the container's
// destroy.
func (e *Engine) VanishBetweenListAndInspect(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if c := e.lookup(id); c != nil {
		e.vanished[c.id] = true
	}
}

// ClearFaults lifts every fault: failures, hangs, vanished containers,
// stalled and muted streams.
func (e *Engine) ClearFaults() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.failList, e.failInspect = 0, 0
	setHang(&e.hangList, false)
	setHang(&e.hangInspect, false)
	clear(e.vanished)
	e.muted = false
	if stall := e.stalled.Swap(nil); stall != nil {
		close(*stall)
	}
}

// RestartDaemon is a daemon restart that takes no time: streams end,
// connections are cut and the event buffer is forgotten, so that no `since`
// can cover what happened before. Containers stay; with stopRunning those
// that ran are found exited with code 143 and finished now, without an
// event, as after a shutdown that stopped them.
func (e *Engine) RestartDaemon(stopRunning bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.endStreams(endClean)
	e.closeConns()
	e.ring, e.ringPos = nil, 0
	if !stopRunning {
		return
	}
	at := e.tick()
	for _, c := range e.containers {
		if c.running() {
			c.state, c.exitCode, c.finished, c.pid = "exited", 143, at, 0
			c.changed()
		}
	}
}

// WaitStreams waits until at least n /events streams are open.
func (e *Engine) WaitStreams(ctx context.Context, n int) error {
	return e.waitFor(ctx, func() bool { return len(e.streams) >= n })
}

// WaitNoStreams waits until no /events stream is open.
func (e *Engine) WaitNoStreams(ctx context.Context) error {
	return e.waitFor(ctx, func() bool { return len(e.streams) == 0 })
}

// waitFor polls cond, called with e.mu held, until it holds.
func (e *Engine) waitFor(ctx context.Context, cond func() bool) error {
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for {
		e.mu.Lock()
		ok := cond()
		e.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-e.closing:
			return errors.New("fakeengine: closed")
		case <-t.C:
		}
	}
}
