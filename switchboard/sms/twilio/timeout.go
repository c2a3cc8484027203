package twilio

import "time"

// AttemptTimeout is how long one request to Twilio can last (Config.Timeout):
// an attempt started that long ago is over, one way or the other.
func (s *Sender) AttemptTimeout() time.Duration { return s.cfg.Timeout }
