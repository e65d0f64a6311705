//go:build !linux

package sandbox

// limitMemory is a no-op where RLIMIT_AS is not available; the time bound
// still holds.
func limitMemory(limit int64) error { return nil }
