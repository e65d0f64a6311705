package controller

// CallbackConfig is a section of Config. Callbacks are filled in by the callbacks work of issue 13.
type CallbackConfig struct{}
