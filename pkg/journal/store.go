package journal

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
)

// Store keeps the Data of one run. Save replaces what was saved before.
type Store interface {
	Load(ctx context.Context) (Data, error)
	Save(ctx context.Context, d Data) error
}

// Memory is a Store in memory, for tests and one-off runs. It keeps the
// JSON encoding of the last Save, so Load returns what a real store would.
type Memory struct {
	mu    sync.Mutex
	saved []byte
	saves int
	fail  int
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty Memory.
func NewMemory() *Memory { return &Memory{} }

// errSaveFailed is what a Save made to fail by FailSaves returns.
var errSaveFailed = errors.New("memory store: save failed on purpose (FailSaves)")

// Load returns the data of the last successful Save.
func (m *Memory) Load(ctx context.Context) (Data, error) {
	if err := ctx.Err(); err != nil {
		return Data{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var d Data
	if m.saved == nil {
		return d, nil
	}
	err := json.Unmarshal(m.saved, &d)
	return d, err
}

// Save replaces the stored data with d.
func (m *Memory) Save(ctx context.Context, d Data) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail > 0 {
		m.fail--
		return errSaveFailed
	}
	m.saved = b
	m.saves++
	return nil
}

// Saves reports how many Saves have succeeded.
func (m *Memory) Saves() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.saves
}

// FailSaves makes the next n Saves fail, as when a crash comes between an
// effect and its record.
func (m *Memory) FailSaves(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fail = n
}
