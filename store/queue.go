package store

import (
	"context"
	"io"
	"sync"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
)

// eventQueue decouples reading the stream from applying it. The daemon drops
// events for a subscriber that does not read for a moment, so the stream is
// always drained at once, even while a sync or an inspect is under way.
type eventQueue struct {
	mu      sync.Mutex
	pending []events.Message
	err     error
	ready   chan struct{}
}

func newEventQueue() *eventQueue {
	return &eventQueue{ready: make(chan struct{}, 1)}
}

// fill moves the stream into the queue until the stream ends.
func (q *eventQueue) fill(ctx context.Context, stream client.EventsResult) {
	for {
		select {
		case ev := <-stream.Messages:
			q.push(ev, nil)
		case err, ok := <-stream.Err:
			if !ok || err == nil {
				err = io.ErrUnexpectedEOF
			}
			q.push(events.Message{}, err)
			return
		case <-ctx.Done():
			q.push(events.Message{}, ctx.Err())
			return
		}
	}
}

func (q *eventQueue) push(ev events.Message, err error) {
	q.mu.Lock()
	if err != nil {
		q.err = err
	} else {
		q.pending = append(q.pending, ev)
	}
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// take waits for events and returns all that are queued. With the events
// before it, it returns the error that ended the stream.
func (q *eventQueue) take(ctx context.Context) ([]events.Message, error) {
	for {
		q.mu.Lock()
		batch, err := q.pending, q.err
		q.pending = nil
		q.mu.Unlock()
		if len(batch) > 0 || err != nil {
			return batch, err
		}
		select {
		case <-q.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
