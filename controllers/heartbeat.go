package controllers

import (
	"context"
	"time"

	"github.com/go-logr/logr"

	"github.com/flightdeck/flightdeck/store/status"
)

// Heartbeat logs "HealthMonitor heartbeat" with the deployments by status
// every interval until ctx is done; the platform's runbook greps for
// HealthMonitor to see that the monitor is alive.
func Heartbeat(ctx context.Context, log logr.Logger, interval time.Duration, counts func() map[status.Status]int) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			c := counts()
			kv := make([]any, 0, 2*len(status.All())+2)
			total := 0
			for _, s := range status.All() {
				kv = append(kv, string(s), c[s])
				total += c[s]
			}
			kv = append(kv, "total", total)
			log.Info("HealthMonitor heartbeat", kv...)
		}
	}
}
