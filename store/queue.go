package store

import (
	"context"
	"io"
	"sync"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
)

// eventQueue decouples reading the stream from applying it. The daemon drops
// events for a subscriber that does not read for a moment, so the stream is
// always drained at once, even while a sync or an inspect is under way. The
// reader also watches how late events arrive: lateness is the one trace
// that such drops leave.
type eventQueue struct {
	mu      sync.Mutex
	pending []events.Message
	err     error
	behind  bool
	lag     lagWatch // the fill goroutine's alone
	ready   chan struct{}
	// offset is the daemon's clock minus ours, measured at connect.
	offset time.Duration
}

func newEventQueue(lag lagWatch) *eventQueue {
	return &eventQueue{lag: lag, offset: lag.offset, ready: make(chan struct{}, 1)}
}

// fill moves the stream into the queue until the stream ends.
func (q *eventQueue) fill(ctx context.Context, stream client.EventsResult) {
	for {
		select {
		case ev := <-stream.Messages:
			late := q.lag.late(ev, time.Now())
			q.push(ev, late, nil)
		case err, ok := <-stream.Err:
			if !ok || err == nil {
				err = io.ErrUnexpectedEOF
			}
			q.push(events.Message{}, false, err)
			return
		case <-ctx.Done():
			q.push(events.Message{}, false, ctx.Err())
			return
		}
	}
}

func (q *eventQueue) push(ev events.Message, late bool, err error) {
	q.mu.Lock()
	if err != nil {
		q.err = err
	} else {
		q.pending = append(q.pending, ev)
	}
	q.behind = q.behind || late
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// take waits for events, for the error that ended the stream, or for wake,
// and returns all that is queued: the events, whether the reader fell
// behind since the last take, and (with the events before it) the error.
func (q *eventQueue) take(ctx context.Context, wake <-chan time.Time) ([]events.Message, bool, error) {
	for {
		batch, behind, err := q.poll()
		if len(batch) > 0 || behind || err != nil {
			return batch, behind, err
		}
		select {
		case <-q.ready:
		case <-wake:
			return nil, false, nil
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
}

// poll is take without the wait.
func (q *eventQueue) poll() ([]events.Message, bool, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	batch, behind, err := q.pending, q.behind, q.err
	q.pending, q.behind = nil, false
	return batch, behind, err
}

// queuedIDs is the set of containers that events waiting in the queue name.
func (q *eventQueue) queuedIDs() map[string]bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	ids := make(map[string]bool)
	for _, ev := range q.pending {
		if ev.Actor.ID != "" {
			ids[ev.Actor.ID] = true
		}
	}
	return ids
}
