package controller

import (
	"bytes"
	"fmt"
	"os"

	"sigs.k8s.io/yaml"
)

// Config is the controller's configuration file (`stepflow controller
// --config FILE`, the chart's `config:` value mounted from a ConfigMap):
// the settings that are lists and tables rather than single flags. Each
// section is documented by its type. The zero Config is the default:
// no queue caps, no rate limits, no controller-wide callback, no cleanup.
type Config struct {
	// Queues caps how many runs run at once, in total and per queue, and
	// how waiting runs are chosen (queue.go).
	Queues QueueConfig `json:"queues,omitempty"`
	// RateLimits limits how fast steps of a type start (ratelimit.go).
	RateLimits RateLimitConfig `json:"rateLimits,omitempty"`
	// Callback is a callback that hears every run (callback.go).
	Callback *CallbackConfig `json:"callback,omitempty"`
	// Cleanup deletes finished runs (cleanup.go).
	Cleanup CleanupConfig `json:"cleanup,omitempty"`
}

// LoadConfig reads a Config from a YAML or JSON file. Unknown fields are
// an error naming the file, so a misspelt setting is not silently ignored.
func LoadConfig(path string) (Config, error) {
	var c Config
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("controller configuration: %w", err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return c, nil
	}
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		return c, fmt.Errorf("controller configuration %s: %w", path, err)
	}
	return c, nil
}
