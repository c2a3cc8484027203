// Package udpstats sends and receives the switchboard's live metrics as
// StatsD lines over UDP multicast, so that any machine on the LAN can watch
// the whole cluster with nothing installed on the nodes.
//
// # Emitter (on every node)
//
// An [Emitter] hands out [Counter], [Gauge] and [Timing] handles. Their hot
// path methods (Counter.Add, Counter.Inc, Gauge.Set, Timing.Observe) are safe
// for concurrent use, take no lock, do not allocate and never block: a
// counter is a set of padded atomic cells chosen by the calling goroutine's
// stack address, so two goroutines on two cores rarely touch the same cache
// line. Registration (Emitter.Counter, Emitter.Gauge, Emitter.GaugeFunc,
// Emitter.Timing) takes a mutex: call it once at start-up and keep the handle.
//
// Once per interval the goroutine running [Emitter.Run] (or a caller of
// [Emitter.Flush]) aggregates the handles and sends the lines in as few
// datagrams as fit in [MaxDatagram] bytes. Sending never blocks the node: the
// socket has a short write deadline and a failed send is counted and dropped.
// If the multicast socket cannot be set up, the emitter logs once, keeps
// counting, and retries the set-up every RetryEvery.
//
// # Wire format
//
// StatsD line protocol with DogStatsD tags, lines separated by '\n', no line
// ever split across datagrams, every datagram at most 1432 bytes. With
// Prefix "switchboard." and Node "n1" one interval looks like:
//
//	switchboard.seq:41|g|#node:n1,part:1/1
//	switchboard.interval_ms:1000|g|#node:n1
//	switchboard.sms.in:3|c|#node:n1
//	switchboard.agents:4|g|#node:n1
//	switchboard.route.latency.count:120|c|#node:n1
//	switchboard.route.latency.p50:1.2|ms|#node:n1
//	switchboard.route.latency.p90:2.5|ms|#node:n1
//	switchboard.route.latency.p99:3.2|ms|#node:n1
//	switchboard.route.latency.max:7.31|ms|#node:n1
//
// The rules:
//
//   - The first line of every datagram is the sequence line: a gauge named
//     <Prefix>seq whose value is the node's datagram sequence number (1, 2,
//     3, ... per emitter; a failed send still uses its number), tagged
//     part:i/k = this is datagram i of the k datagrams of one interval.
//     Listeners count gaps in seq as lost datagrams; a seq lower than the
//     last one seen means the node restarted.
//   - The first datagram of an interval carries <Prefix>interval_ms, the
//     length of the interval the values cover, in milliseconds (measured
//     with Options.Now), so rates are exact even for a short first or last
//     interval.
//   - Counters ("c") are the count during the interval (not a running total);
//     every registered counter is sent every interval, also when 0.
//   - Gauges ("g") are the last value set, or the value of a GaugeFunc at send
//     time. A negative gauge is sent as "name:0|g" followed by "name:-5|g" in
//     the same datagram, because in StatsD a leading sign means "relative".
//   - A Timing named T becomes T.count ("c", observations in the interval)
//     and, when count > 0, T.p50, T.p90, T.p99 and T.max ("ms", milliseconds
//     as a decimal). Percentiles are nearest-rank over a log-linear histogram
//     with 16 buckets per power of two: the value reported is the mean of the
//     observations in the bucket holding that rank, which is exact when those
//     observations are equal and otherwise within 1/16 (6.25%) of the true
//     value; max is exact.
//   - Metric names keep [A-Za-z0-9_.-/] and the node tag keeps the same set;
//     anything else becomes '_'.
//
// # Listener and decoder (in the monitor)
//
// [Decoder.Parse] and [ParseDatagram] read any StatsD or DogStatsD datagram
// (sample rates, signed gauges, timers, histograms, sets, distributions,
// tags); malformed lines are counted and skipped. [Aggregator] keeps
// per-node state (last seen, seq, lost datagrams, the last complete interval)
// and is safe for concurrent use. [Listen] joins the group on an interface
// and feeds an Aggregator from one goroutine that stops when the context is
// done or Close is called.
package udpstats
