package controller

// CleanupConfig is a section of Config. Cleanup is filled in by the TTL and history work of issue 13.
type CleanupConfig struct{}
