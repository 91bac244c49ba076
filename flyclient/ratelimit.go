package flyclient

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// keyedLimiter holds one token bucket per key (action and identifier). A
// bucket that has been idle long enough to be full again behaves exactly like
// a new one, so such buckets are dropped: memory stays proportional to the
// keys used within the last idle window, not to every machine ever seen.
type keyedLimiter struct {
	limit rate.Limit
	burst int
	idle  time.Duration // a bucket unused this long is full and evictable

	mu        sync.Mutex
	buckets   map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	lim      *rate.Limiter
	lastUsed time.Time
}

func newKeyedLimiter(limit rate.Limit, burst int) *keyedLimiter {
	idle := time.Minute
	if limit > 0 && limit != rate.Inf {
		// Time to refill from empty, plus a margin; never below a minute so
		// sweeps stay rare.
		if refill := time.Duration(float64(burst)/float64(limit)*float64(time.Second)) + time.Second; refill > idle {
			idle = refill
		}
	}
	return &keyedLimiter{limit: limit, burst: burst, idle: idle, buckets: map[string]*bucket{}}
}

// reserve takes one token for key at now and returns how long the caller must
// wait before sending, and a cancel func that returns the token when the
// caller gives up instead of waiting.
func (k *keyedLimiter) reserve(key string, now time.Time) (time.Duration, func()) {
	if k.limit == rate.Inf {
		return 0, func() {}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.sweepLocked(now)
	b := k.buckets[key]
	if b == nil {
		b = &bucket{lim: rate.NewLimiter(k.limit, k.burst)}
		k.buckets[key] = b
	}
	r := b.lim.ReserveN(now, 1)
	if !r.OK() { // burst 0: the limiter never grants; treat as unlimited rather than blocking forever
		return 0, func() {}
	}
	delay := r.DelayFrom(now)
	if t := now.Add(delay); t.After(b.lastUsed) {
		b.lastUsed = t
	}
	return delay, func() { r.CancelAt(now) }
}

// sweepLocked drops buckets idle for longer than k.idle; it runs at most once
// per idle window, so its cost is amortised over the calls in between.
func (k *keyedLimiter) sweepLocked(now time.Time) {
	if now.Sub(k.lastSweep) < k.idle {
		return
	}
	k.lastSweep = now
	for key, b := range k.buckets {
		if now.Sub(b.lastUsed) > k.idle {
			delete(k.buckets, key)
		}
	}
}

// size returns the number of live buckets.
func (k *keyedLimiter) size() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.buckets)
}
