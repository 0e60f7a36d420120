package fakeengine

import (
	"context"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"time"
)

var (
	randomImages   = []string{"nginx:1.27", "redis:7", "postgres:16", "busybox:latest", "alpine:3.20", "ghcr.io/acme/api:v2.3.1", "traefik:v3.1"}
	randomProjects = []string{"shop", "blog", "infra", "ci"}
	randomServices = []string{"web", "db", "cache", "worker", "proxy"}
)

// randomSpec makes a believable container: most belong to a compose
// project, half have a health check.
func (e *Engine) randomSpec(rng *rand.Rand) Spec {
	project := randomProjects[rng.IntN(len(randomProjects))]
	service := randomServices[rng.IntN(len(randomServices))]
	s := Spec{
		Image:       randomImages[rng.IntN(len(randomImages))],
		Labels:      map[string]string{"org.example.team": project},
		Healthcheck: rng.IntN(2) == 0,
	}
	if rng.IntN(10) < 7 {
		s.Labels["com.docker.compose.project"] = project
		s.Labels["com.docker.compose.service"] = service
	}
	s.Name = e.freeName(fmt.Sprintf("%s-%s-%d", project, service, e.seq+1))
	return s
}

// freeName returns name, or name with a suffix if it is taken. It must be
// called with e.mu held.
func (e *Engine) freeName(name string) string {
	for i, n := 1, name; ; i++ {
		if e.names[n] == nil {
			return n
		}
		n = fmt.Sprintf("%s_%d", name, i)
	}
}

// weighted returns an index into weights, chosen with their odds.
func weighted(rng *rand.Rand, weights ...int) int {
	total := 0
	for _, w := range weights {
		total += w
	}
	n := rng.IntN(total)
	for i, w := range weights {
		if n < w {
			return i
		}
		n -= w
	}
	return len(weights) - 1
}

// Populate adds n random containers silently, in a mix of states, health
// and labels like a busy host's, with times over the last 30 days. The same
// seed on an engine with the same clock and contents gives the same
// containers.
func (e *Engine) Populate(n int, seed int64) {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15))
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.clock()
	added := make([]*ctr, 0, n)
	for range n {
		s := e.randomSpec(rng)
		var raw [32]byte
		for s.ID == "" || e.containers[s.ID] != nil {
			for i := range raw {
				raw[i] = byte(rng.Uint32())
			}
			s.ID = hex.EncodeToString(raw[:])
		}
		s.State = validStates[weighted(rng, 6, 60, 5, 4, 20, 5)]
		s.Created = now.Add(-time.Duration(rng.Int64N(int64(30*24*time.Hour))) - time.Minute)
		// spread returns a time between from and now.
		spread := func(from time.Time) time.Time {
			return from.Add(time.Duration(rng.Int64N(int64(now.Sub(from)) + 1)))
		}
		if s.State != "created" {
			s.Started = spread(s.Created)
		}
		switch s.State {
		case "running", "paused":
			if rng.IntN(4) == 0 { // an earlier run ended before this one
				s.RestartCount = 1 + rng.IntN(5)
				s.Finished = s.Started.Add(-time.Second)
			}
		case "exited", "restarting", "dead":
			s.Finished = spread(s.Started)
			codes := []int{0, 0, 0, 1, 2, 137, 143}
			if s.State == "restarting" {
				codes = []int{1, 2, 137}
				s.RestartCount = 1 + rng.IntN(20)
			}
			s.ExitCode = codes[rng.IntN(len(codes))]
			s.OOMKilled = s.ExitCode == 137 && rng.IntN(3) == 0
		}
		if s.Healthcheck && s.State != "created" {
			s.Health = []string{"starting", "healthy", "healthy", "healthy", "unhealthy"}[rng.IntN(5)]
			if s.Health == "unhealthy" {
				s.FailingStreak = 3 + rng.IntN(10)
			}
		}
		c := e.fromSpec(s)
		e.insert(c)
		added = append(added, c)
	}
	e.prerender(added)
}

// Random applies one random action that the state of a random container
// allows, with its events. One action in twenty creates a container and
// one destroys one, so that a storm keeps the population roughly steady.
func (e *Engine) Random(rng *rand.Rand) {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := rng.IntN(20)
	if len(e.ids) == 0 || n == 0 {
		e.create(e.randomSpec(rng))
		return
	}
	c := e.containers[e.ids[rng.IntN(len(e.ids))]]
	if n == 1 {
		e.destroy(c)
		return
	}
	switch c.state {
	case "created":
		if rng.IntN(8) == 0 {
			e.rename(c, e.freeName(fmt.Sprintf("%s-r%d", c.name, e.seq)))
		} else {
			e.start(c)
		}
	case "running":
		health := 0
		if c.healthcheck {
			health = 4
		}
		switch weighted(rng, 2, 2, 1, 1, 1, health, 1, 1, 1) {
		case 0:
			e.die(c, rng.IntN(3), false)
		case 1:
			e.stop(c)
		case 2:
			e.kill(c)
		case 3:
			e.oom(c)
		case 4:
			e.pause(c, true)
		case 5:
			next := "healthy"
			if c.health == "healthy" || rng.IntN(4) == 0 {
				next = "unhealthy"
			}
			e.health(c, next)
		case 6:
			e.die(c, 1, true)
			e.start(c)
		case 7:
			e.die(c, 1+rng.IntN(2), true)
		case 8:
			e.rename(c, e.freeName(fmt.Sprintf("%s-r%d", c.name, e.seq)))
		}
	case "paused":
		if rng.IntN(5) == 0 {
			e.kill(c)
		} else {
			e.pause(c, false)
		}
	case "exited", "restarting":
		e.start(c)
	default: // dead: only a destroy can follow
		e.destroy(c)
	}
}

// Storm runs Random at perSecond actions a second (by the wall clock, in
// bursts every millisecond) until ctx is done or the engine closes, and
// returns how many actions it ran. rng must not be used elsewhere meanwhile.
func (e *Engine) Storm(ctx context.Context, perSecond int, rng *rand.Rand) int {
	if perSecond <= 0 {
		return 0
	}
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	// A starved CPU would leave a backlog that, caught up at once, runs away
	// from the rate asked for: past a tenth of a second behind, the rest is
	// given up.
	maxBurst := perSecond/10 + 1
	start, done, skipped := time.Now(), 0, 0
	for {
		select {
		case <-ctx.Done():
			return done
		case <-e.closing:
			return done
		case <-tick.C:
		}
		due := int(time.Since(start).Seconds()*float64(perSecond)) - skipped
		if due-done > maxBurst {
			skipped += due - done - maxBurst
			due = done + maxBurst
		}
		for ; done < due && ctx.Err() == nil; done++ {
			e.Random(rng)
		}
	}
}
