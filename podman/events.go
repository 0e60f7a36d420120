package podman

import (
	"context"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
)

// rawEvent is an event as Podman writes it: Docker's fields and its own.
type rawEvent struct {
	events.Message
	HealthStatus string `json:"HealthStatus,omitempty"`
}

// extraAttributes are what Podman adds to every container event beside
// the container's labels, image and name.
var extraAttributes = []string{"containerExitCode", "podId"}

// translate maps one Podman event onto Docker's dialect. pending says that
// the event announces a health check whose result is not known yet: its
// action gets the status once settle has read it.
func translate(raw rawEvent, d daemon) (ev events.Message, pending bool) {
	ev = raw.Message
	if ev.Type != events.ContainerEventType {
		return ev, false
	}
	for _, k := range extraAttributes {
		delete(ev.Actor.Attributes, k)
	}
	switch ev.Action {
	case "remove":
		ev.Action = events.ActionDestroy
	case events.ActionHealthStatus:
		if d.healthAtStart {
			return ev, true
		}
		if isHealth(raw.HealthStatus) {
			ev.Action = withHealth(raw.HealthStatus)
		}
	}
	return ev, false
}

func isHealth(s string) bool {
	switch s {
	case "starting", "healthy", "unhealthy":
		return true
	}
	return false
}

// withHealth is Docker's action for a health check's result.
func withHealth(status string) events.Action {
	return events.Action(string(events.ActionHealthStatus) + ": " + status)
}

// Events follows the daemon's events: the client's stream against dockerd,
// Podman's decoded and translated here against Podman.
func (e *Engine) Events(ctx context.Context, opts client.EventsListOptions) client.EventsResult {
	d := e.current()
	if !d.podman {
		return e.Client.Events(ctx, opts)
	}
	messages := make(chan events.Message)
	errs := make(chan error, 1)
	go func() {
		defer close(errs)
		errs <- e.follow(ctx, opts, d, messages)
	}()
	return client.EventsResult{Messages: messages, Err: errs}
}

// follow streams Podman's events into out until the stream ends, and
// returns why, as the client's Events does (io.EOF at the end).
func (e *Engine) follow(ctx context.Context, opts client.EventsListOptions, d daemon, out chan<- events.Message) error {
	query := url.Values{}
	if opts.Since != "" {
		query.Set("since", opts.Since)
	}
	if opts.Until != "" {
		query.Set("until", opts.Until)
	}
	if len(opts.Filters) > 0 {
		f, err := json.Marshal(opts.Filters)
		if err != nil {
			return err
		}
		query.Set("filters", string(f))
	}
	resp, err := e.get(ctx, "/v"+e.ClientVersion()+"/events", query)
	if err != nil {
		return err
	}
	defer resp.Body.Close()

	// Checks still settling when the stream ends are abandoned: the sync
	// after a reconnect reads every container's health anyway.
	sctx, cancel := context.WithCancel(ctx)
	var settling sync.WaitGroup
	defer func() {
		cancel()
		settling.Wait()
	}()
	send := func(ev events.Message) bool {
		select {
		case out <- ev:
			return true
		case <-sctx.Done():
			return false
		}
	}
	since := parseSince(opts.Since)
	dec := json.NewDecoder(resp.Body)
	for {
		var raw rawEvent
		if err := dec.Decode(&raw); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		if raw.TimeNano == 0 {
			raw.TimeNano = raw.Time * int64(time.Second)
		}
		if raw.TimeNano < since {
			continue // before since: Podman's float parse of it starts early
		}
		ev, pending := translate(raw, d)
		if pending {
			settling.Go(func() { e.settle(sctx, ev, send) })
			continue
		}
		if !send(ev) {
			return ctx.Err()
		}
	}
}

// parseSince reads the store's "seconds.nanoseconds" since as nanoseconds;
// 0 when there is none or it is in another form.
func parseSince(s string) int64 {
	sec, frac, _ := strings.Cut(s, ".")
	n, err := strconv.ParseInt(sec, 10, 64)
	if err != nil || s == "" {
		return 0
	}
	nano := n * int64(time.Second)
	if frac != "" {
		frac = (frac + "000000000")[:9]
		f, err := strconv.ParseInt(frac, 10, 64)
		if err != nil {
			return 0
		}
		nano += f
	}
	return nano
}
