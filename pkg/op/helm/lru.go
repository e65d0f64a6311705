package helm

import (
	"container/list"
	"sync"
	"time"
)

// lru keeps values up to a total size, least recently used out; an entry
// may also expire.
type lru struct {
	max int64

	mu    sync.Mutex
	size  int64
	order *list.List // front: most recently used
	items map[string]*list.Element
}

type lruEntry struct {
	key     string
	value   any
	size    int64
	expires time.Time // zero: never
}

func newLRU(max int64) *lru {
	return &lru{max: max, order: list.New(), items: map[string]*list.Element{}}
}

// get returns the value under key unless it is absent or expired at now.
func (c *lru) get(key string, now time.Time) (any, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return nil, false
	}
	e := el.Value.(*lruEntry)
	if !e.expires.IsZero() && !now.Before(e.expires) {
		c.remove(el)
		return nil, false
	}
	c.order.MoveToFront(el)
	return e.value, true
}

// put stores value under key, for ttl when ttl > 0. A value larger than
// the whole cache is not kept.
func (c *lru) put(key string, value any, size int64, now time.Time, ttl time.Duration) {
	if size > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.remove(el)
	}
	e := &lruEntry{key: key, value: value, size: size}
	if ttl > 0 {
		e.expires = now.Add(ttl)
	}
	c.items[key] = c.order.PushFront(e)
	c.size += size
	for c.size > c.max {
		c.remove(c.order.Back())
	}
}

func (c *lru) remove(el *list.Element) {
	e := el.Value.(*lruEntry)
	c.order.Remove(el)
	delete(c.items, e.key)
	c.size -= e.size
}
