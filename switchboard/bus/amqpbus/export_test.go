package amqpbus

// DropConnection closes the TCP connection under the current AMQP
// connection, as a network failure would.
func (b *Bus) DropConnection() {
	b.mu.Lock()
	c := b.netConn
	b.mu.Unlock()
	if c != nil {
		c.Close()
	}
}

// MaxPending is the highest number of published-but-unconfirmed messages
// seen on one channel.
func (b *Bus) MaxPending() int {
	b.pmu.Lock()
	defer b.pmu.Unlock()
	return b.maxPending
}

// Outstanding is the number of publishes accepted and not yet resolved.
func (b *Bus) Outstanding() int {
	b.pmu.Lock()
	defer b.pmu.Unlock()
	return len(b.unconfirmed)
}

// Runs is how many times the send loop wrote queued publishes.
func (b *Bus) Runs() int {
	b.pmu.Lock()
	defer b.pmu.Unlock()
	return b.runs
}
