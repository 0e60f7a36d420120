package store

import (
	"context"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// resync compares the store with one list of the daemon's containers and
// mends what differs, so that events the daemon dropped cannot leave the
// store wrong for long. It inspects only the containers the list shows to
// be new or different, and the ones it no longer shows; it counts missed
// deaths and destroys as a reconnect's reconcile does, so never twice.
// drain applies the events queued meanwhile. It returns an error only when
// the session is over.
func (s *Store) resync(ctx context.Context, reason resyncReason, offset time.Duration, pending func() map[string]bool, drain func() error) error {
	lctx, cancel := s.call(ctx)
	list, err := s.engine.ContainerList(lctx, client.ContainerListOptions{All: true})
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.log.Warn("resync: cannot list containers; keeping the event-fed state until the next one", "reason", reason, "err", err)
		return nil
	}
	// Events that came while the list was on its way explain differences
	// that are no loss: apply them first.
	if err := drain(); err != nil {
		return err
	}
	daemonNow := time.Now().Add(offset)
	// Podman's list never words the health; dockerd's always does when
	// there is a health check. (The Run goroutine, this one, alone writes
	// the status.)
	wordsHealth := s.status.Daemon.Flavor != FlavorPodman
	listed := make(map[string]bool, len(list.Items))
	var check []string
	for _, item := range list.Items {
		listed[item.ID] = true
		if s.retained.buried(item.ID) {
			continue
		}
		if cur := s.containers[item.ID]; cur == nil || !viewOf(item, wordsHealth).agrees(cur, daemonNow) {
			check = append(check, item.ID)
		}
	}
	for id := range s.containers {
		if !listed[id] {
			check = append(check, id)
		}
	}
	results, err := s.inspectAll(ctx, check, false)
	if err != nil {
		return err
	}
	// A container with events still queued is in flight, not lost: its
	// events and their inspect will tell.
	inFlight := pending()
	var fixed Corrections
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, id := range check {
		r := results[i]
		if r.err != nil {
			s.log.Debug("resync: cannot inspect container; leaving it as it is", "id", shortID(id), "err", r.err)
			continue
		}
		if inFlight[id] || s.retained.buried(id) {
			continue
		}
		cur := s.containers[id]
		switch {
		case r.c == nil && cur != nil:
			fixed.Ghost++
			s.vanish(cur, now)
		case r.c == nil:
		case cur == nil:
			fixed.Missing++
			s.mend(*r.c, now)
		default:
			if next := r.c.since(*cur); shownDiffers(cur, &next) {
				fixed.Changed++
			}
			s.mend(*r.c, now)
		}
	}
	switch reason {
	case resyncFellBehind:
		s.status.Resyncs.FellBehind++
	default:
		s.status.Resyncs.Interval++
	}
	s.status.Corrections.Missing += fixed.Missing
	s.status.Corrections.Ghost += fixed.Ghost
	s.status.Corrections.Changed += fixed.Changed
	s.retained.sweep(now)
	s.notify()
	if fixed != (Corrections{}) {
		s.log.Info("resync found the store out of date: the daemon dropped events", "reason", reason,
			"missing", fixed.Missing, "ghost", fixed.Ghost, "changed", fixed.Changed)
	} else {
		s.log.Debug("resync found the store up to date", "reason", reason, "containers", len(list.Items), "inspected", len(check))
	}
	return nil
}

// shownDiffers says whether two views of a container differ in anything
// the store shows and an event would have changed. The failing streak is
// left out: it grows with every failed probe, with no event.
func shownDiffers(a, b *Container) bool {
	return a.Name != b.Name || a.Image != b.Image || a.ImageID != b.ImageID ||
		a.State != b.State || a.Health != b.Health || a.RestartCount != b.RestartCount ||
		a.OOMKilled != b.OOMKilled || a.HasExitCode != b.HasExitCode || a.ExitCode != b.ExitCode ||
		!a.Created.Equal(b.Created) || !a.Started.Equal(b.Started) || !a.Finished.Equal(b.Finished) ||
		!maps.Equal(a.Labels, b.Labels)
}

// listView is what one entry of the container list tells of a container.
// The list has no start or finish times, but its status text words how
// long ago they were ("Up 3 minutes", "Exited (1) 2 hours ago"), which is
// enough to see a restart or a death the store missed.
type listView struct {
	name, state string
	created     int64
	health      string
	knowsHealth bool
	exitCode    int
	knowsExit   bool
	age         ageRange
	ageOfFinish bool // age counts from the last finish, not the last start
}

// ageRange is the span of durations one wording of docker's
// HumanDuration stands for; zero when the status text had none.
type ageRange struct{ lo, hi time.Duration }

func (r ageRange) known() bool { return r.hi > 0 }

// ageSlack allows for the time between the daemon's wording and our look,
// and for clocks a little apart.
const ageSlack = 2 * time.Second

// wordsHealth says the daemon's status text has the health in parentheses
// whenever the container has a health check.
func viewOf(item container.Summary, wordsHealth bool) listView {
	v := listView{state: string(item.State), created: item.Created}
	for _, n := range item.Names {
		// Legacy links add names of the form /other/alias.
		if n = strings.TrimPrefix(n, "/"); !strings.Contains(n, "/") {
			v.name = n
			break
		}
	}
	status := item.Status
	switch {
	case strings.HasPrefix(status, "Up "):
		words, paren, _ := strings.Cut(strings.TrimPrefix(status, "Up "), " (")
		v.age = parseAge(words)
		if v.state == "running" && wordsHealth {
			switch strings.TrimSuffix(paren, ")") {
			case "":
				v.health, v.knowsHealth = "", true
			case "healthy", "unhealthy":
				v.health, v.knowsHealth = strings.TrimSuffix(paren, ")"), true
			case "health: starting":
				v.health, v.knowsHealth = "starting", true
			}
		}
	case strings.HasPrefix(status, "Exited ("), strings.HasPrefix(status, "Restarting ("):
		_, rest, _ := strings.Cut(status, "(")
		code, rest, ok := strings.Cut(rest, ") ")
		if n, err := strconv.Atoi(code); ok && err == nil {
			v.exitCode, v.knowsExit = n, true
		}
		v.age = parseAge(strings.TrimSuffix(rest, " ago"))
		v.ageOfFinish = true
	}
	// From API 1.52 the list says the health itself.
	if h := item.Health; h != nil && v.state == "running" {
		v.health, v.knowsHealth = string(h.Status), true
		if h.Status == container.NoHealthcheck {
			v.health = ""
		}
	}
	return v
}

// agrees says whether the store's container c can be what the list shows,
// at the daemon's time now.
func (v listView) agrees(c *Container, now time.Time) bool {
	if v.name != c.Name || v.state != c.State {
		return false
	}
	if d := v.created - c.Created.Unix(); d < -1 || d > 1 {
		return false
	}
	if v.knowsHealth && v.health != c.Health {
		return false
	}
	if v.knowsExit && (!c.HasExitCode || v.exitCode != c.ExitCode) {
		return false
	}
	if v.age.known() {
		since := c.Started
		if v.ageOfFinish {
			since = c.Finished
		}
		age := now.Sub(since)
		if since.IsZero() || age < v.age.lo-ageSlack || age >= v.age.hi+ageSlack {
			return false
		}
	}
	return true
}

// parseAge reads the words of docker's HumanDuration (go-units) back into
// the span of durations they stand for; an unknown wording gives none.
func parseAge(words string) ageRange {
	switch words {
	case "Less than a second":
		return ageRange{0, time.Second}
	case "About a minute":
		return ageRange{time.Minute, 2 * time.Minute}
	case "About an hour":
		return ageRange{time.Hour, 90 * time.Minute}
	}
	num, unit, ok := strings.Cut(words, " ")
	n, err := strconv.Atoi(num)
	if !ok || err != nil || n < 0 {
		return ageRange{}
	}
	d := time.Duration(n)
	const day, week, month, year = 24 * time.Hour, 7 * 24 * time.Hour, 30 * 24 * time.Hour, 365 * 24 * time.Hour
	half := 30 * time.Minute // HumanDuration rounds hours to the nearest
	switch strings.TrimSuffix(unit, "s") {
	case "second":
		return ageRange{d * time.Second, (d + 1) * time.Second}
	case "minute":
		return ageRange{d * time.Minute, (d + 1) * time.Minute}
	case "hour":
		return ageRange{d*time.Hour - half, d*time.Hour + half}
	case "day":
		return ageRange{d*day - half, (d+1)*day - half}
	case "week":
		return ageRange{d*week - half, (d+1)*week - half}
	case "month":
		return ageRange{d*month - half, (d+1)*month - half}
	case "year":
		return ageRange{d * year, (d + 1) * year}
	}
	return ageRange{}
}
