package devcluster

import (
	"net"
	"sync"
	"time"
)

// delayListener accepts connections whose writes arrive d late.
type delayListener struct {
	net.Listener
	d time.Duration
}

func (l delayListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	dc := &delayConn{Conn: c, d: l.d, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go dc.send()
	return dc, nil
}

// delayConn queues what is written and sends each write d after it was
// made, in order. Write never waits, so the broker goes on answering the
// next requests meanwhile, as it would with the network in between.
type delayConn struct {
	net.Conn
	d    time.Duration
	wake chan struct{}
	done chan struct{}

	mu     sync.Mutex
	queue  []delayed
	err    error
	closed bool
}

type delayed struct {
	due  time.Time
	data []byte
}

func (c *delayConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if c.closed {
		return 0, net.ErrClosed
	}
	c.queue = append(c.queue, delayed{time.Now().Add(c.d), append([]byte(nil), b...)})
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return len(b), nil
}

func (c *delayConn) send() {
	for {
		c.mu.Lock()
		if len(c.queue) == 0 {
			c.mu.Unlock()
			select {
			case <-c.wake:
				continue
			case <-c.done:
				return
			}
		}
		next := c.queue[0]
		c.mu.Unlock()
		if wait := time.Until(next.due); wait > 0 {
			select {
			case <-time.After(wait):
			case <-c.done:
				return
			}
		}
		_, err := c.Conn.Write(next.data)
		c.mu.Lock()
		c.queue[0] = delayed{}
		c.queue = c.queue[1:]
		if err != nil {
			c.err = err
		}
		c.mu.Unlock()
		if err != nil {
			return
		}
	}
}

func (c *delayConn) Close() error {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		close(c.done)
	}
	c.mu.Unlock()
	return c.Conn.Close()
}
