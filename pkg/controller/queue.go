package controller

// QueueConfig is a section of Config. Queues are filled in by the queues work of issue 13.
type QueueConfig struct{}
