package journal

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
)

// Store keeps the Data of one run. Save replaces what was saved before, but
// only if that is still what this Store last loaded or saved: if another
// writer saved in between, Save writes nothing and returns an error
// wrapping ErrConflict, and the next Load returns the other writer's data.
// The Journal then puts its own changes over that data and saves again, so
// no writer loses another's record or variable.
type Store interface {
	Load(ctx context.Context) (Data, error)
	Save(ctx context.Context, d Data) error
}

// ErrConflict is wrapped by a Store's Save when another writer saved since
// this Store's last Load or Save.
var ErrConflict = errors.New("the journal was changed by another writer")

// Memory is a Store in memory, for tests and one-off runs. It keeps the
// JSON encoding of the last Save, so Load returns what a real store would.
// Memory is one writer; Writer returns another writer of the same data.
type Memory struct {
	*memoryData
	seen int
}

type memoryData struct {
	mu      sync.Mutex
	saved   []byte
	version int
	saves   int
	fail    int
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty Memory.
func NewMemory() *Memory { return &Memory{memoryData: &memoryData{}} }

// Writer returns a second writer of m's data, which conflicts with m (and
// m with it) as two processes writing one ConfigMap do.
func (m *Memory) Writer() *Memory { return &Memory{memoryData: m.memoryData} }

// errSaveFailed is what a Save made to fail by FailSaves returns.
var errSaveFailed = errors.New("memory store: save failed on purpose (FailSaves)")

// Load returns the data of the last successful Save.
func (m *Memory) Load(ctx context.Context) (Data, error) {
	if err := ctx.Err(); err != nil {
		return Data{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seen = m.version
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
	if m.seen != m.version {
		return ErrConflict
	}
	m.saved = b
	m.saves++
	m.version++
	m.seen = m.version
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
