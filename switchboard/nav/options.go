package nav

import (
	"errors"
	"log/slog"
	"time"
)

// DefaultMaxEvents is the default most events of one POST /nav
// (-nav-max-events). The body limit (-nav-max-body, 1 MiB) holds about
// 20,000 of the smallest events, so both limits matter.
const DefaultMaxEvents = 10000

// Options configure a Service. NewOptions returns every default; New
// validates. Flag names in errors are the node's (-nav-window, ...).
type Options struct {
	// Node is this node's id: it stamps ingested events and partial
	// rankings. Required (the switchboard passes its -node).
	Node string
	// Sample loads the embedded sample catalog when the stored catalog is
	// empty. Default true (-nav-sample).
	Sample bool
	// Window is the span of the rolling top-N. Default 5m (-nav-window).
	Window time.Duration
	// Resolution is the window's bucket size and the tick at which the
	// ranking is recomputed. Default 1s (-nav-resolution).
	Resolution time.Duration
	// TopN is the length of the published ranking. Default 10 (-top-n).
	TopN int
	// PartialSize bounds the entries of this node's partial ranking on
	// stats.top. The merge is exact while no node has more distinct products
	// in its window. 0 = 1000.
	PartialSize int
	// MaxProductsPerUser bounds a user's history; when it is full the
	// oldest product is forgotten. Default 100 (-nav-max-products).
	MaxProductsPerUser int
	// UserTTL forgets users idle for longer. Default 720h (-nav-user-ttl).
	UserTTL time.Duration
	// FlushInterval is how often changed counters and histories are written
	// (one unsynced batch). 0 = 100ms.
	FlushInterval time.Duration
	// MaxBody bounds a POST /nav body. Default 1 MiB (-nav-max-body).
	MaxBody int64
	// MaxEvents bounds the events of one POST /nav. Default (and 0)
	// DefaultMaxEvents (-nav-max-events).
	MaxEvents int
	// PublishConcurrency is how many bus publishes one POST runs at once.
	// 1 keeps a batch in order (right for the in-process bus); a higher
	// number pipelines RabbitMQ confirms. 0 = 16.
	PublishConcurrency int

	// Now is the clock. nil = time.Now.
	Now func() time.Time
	// NewID makes event ids; it must be safe for concurrent use and unique
	// across nodes and restarts. nil = "<node>-<boot time>-<counter>".
	NewID func() string
	// Logger gets component=nav. nil = slog.Default().
	Logger *slog.Logger
	// Accepted, when set, is told how many events each POST /nav accepted
	// (metrics: this node's ingestion, not every node's counting).
	Accepted func(n int)
}

// NewOptions returns the defaults.
func NewOptions() Options {
	return Options{
		Sample:             true,
		Window:             5 * time.Minute,
		Resolution:         time.Second,
		TopN:               10,
		PartialSize:        1000,
		MaxProductsPerUser: 100,
		UserTTL:            30 * 24 * time.Hour,
		FlushInterval:      100 * time.Millisecond,
		MaxBody:            1 << 20,
		MaxEvents:          DefaultMaxEvents,
		PublishConcurrency: 16,
	}
}

// Validate reports every setting that cannot work, naming its flag. It does
// not require Node (the switchboard fills that in).
func (o *Options) Validate() error {
	var errs []error
	if o.Resolution <= 0 {
		errs = append(errs, errors.New("-nav-resolution: must be positive"))
	}
	if o.Window <= 0 {
		errs = append(errs, errors.New("-nav-window: must be positive"))
	} else if o.Resolution > 0 {
		if o.Window%o.Resolution != 0 {
			errs = append(errs, errors.New("-nav-window: must be a multiple of -nav-resolution"))
		} else if b := o.Window / o.Resolution; b > 100000 {
			errs = append(errs, errors.New("-nav-window: at most 100000 buckets of -nav-resolution"))
		}
	}
	if o.TopN < 1 || o.TopN > 1000 {
		errs = append(errs, errors.New("-top-n: must be between 1 and 1000"))
	}
	if o.PartialSize < 0 {
		errs = append(errs, errors.New("nav: PartialSize must not be negative"))
	}
	if o.MaxProductsPerUser < 1 || o.MaxProductsPerUser > 10000 {
		errs = append(errs, errors.New("-nav-max-products: must be between 1 and 10000"))
	}
	if o.UserTTL <= 0 {
		errs = append(errs, errors.New("-nav-user-ttl: must be positive"))
	}
	if o.FlushInterval < 0 {
		errs = append(errs, errors.New("nav: FlushInterval must not be negative"))
	}
	if o.MaxBody < 1024 {
		errs = append(errs, errors.New("-nav-max-body: must be at least 1024"))
	}
	if o.MaxEvents < 0 {
		errs = append(errs, errors.New("-nav-max-events: must not be negative"))
	}
	if o.PublishConcurrency < 0 {
		errs = append(errs, errors.New("nav: PublishConcurrency must not be negative"))
	}
	return errors.Join(errs...)
}

func (o *Options) setDefaults() {
	if o.PartialSize == 0 {
		o.PartialSize = 1000
	}
	if o.FlushInterval == 0 {
		o.FlushInterval = 100 * time.Millisecond
	}
	if o.MaxEvents == 0 {
		o.MaxEvents = DefaultMaxEvents
	}
	if o.PublishConcurrency == 0 {
		o.PublishConcurrency = 16
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}
