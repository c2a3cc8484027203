// Package protocol defines the wire types shared by the switchboard node and
// its clients: the message object and the JSON frames of the agent WebSocket
// protocol described in DESIGN.md, plus the phone-number and delivery-status
// rules both sides must agree on.
//
// Everything here is a plain value type or a pure function and is safe for
// concurrent use.
package protocol
