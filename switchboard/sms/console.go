package sms

import (
	"context"
	"log/slog"
	"unicode/utf8"

	"github.com/switchboard/switchboard/switchboard/protocol"
)

// NewConsole returns the Sender used when no SMS provider is configured: it
// logs each reply (component=sms, provider=console) instead of sending it
// and reports it as sent. It holds no credentials, so there are none to
// leak. A nil logger means slog.Default().
func NewConsole(logger *slog.Logger) Sender {
	if logger == nil {
		logger = slog.Default()
	}
	return &console{log: logger.With("component", "sms", "provider", "console")}
}

type console struct{ log *slog.Logger }

func (c *console) Name() string { return "console" }

func (c *console) Send(ctx context.Context, m Outgoing) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{}, &SendError{Message: "not sent", Err: err}
	}
	c.log.InfoContext(ctx, "sms reply (console provider, not sent)",
		"id", m.ID, "to", m.To, "from", m.From, "chars", utf8.RuneCountInString(m.Body), "body", m.Body)
	return Result{ProviderID: "console-" + m.ID, Status: protocol.StatusSent}, nil
}
