package controller

// RateLimitConfig is a section of Config. Rate limits are filled in by the rate-limit work of issue 13.
type RateLimitConfig struct{}
