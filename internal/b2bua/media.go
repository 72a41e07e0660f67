package b2bua

// The media relay: when the caller's request or a target asks for it
// (pipeline.Request.MediaRelay, Target.MediaRelay) and one is configured,
// the call's offer goes to the relay before the far leg sees it, every
// answer and re-offer after it, and the relay's session is deleted when the
// call ends, however it ends (drop). The relay names the call by sipward's
// own call id and its two sides by fixed tags.

import "context"

// The relay's tags of a call's two sides.
const (
	relayTagA = "caller"
	relayTagB = "callee"
)

func relayTags(fromA bool) (from, to string) {
	if fromA {
		return relayTagA, relayTagB
	}
	return relayTagB, relayTagA
}

// mediaOffer anchors the call's media on the relay with the caller's
// offer and returns the offer for the far leg.
func (b *B2BUA) mediaOffer(c *call, offer []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), relayTimeout)
	defer cancel()
	out, err := b.cfg.Relay.Offer(ctx, c.id, relayTagA, "", offer)
	if err != nil {
		return nil, err
	}
	c.relayed.Store(true)
	return out, nil
}

// mediaAnswer passes the far leg's answer to the caller's offer through the
// relay, when the call is relayed; otherwise it returns sdp.
func (b *B2BUA) mediaAnswer(c *call, sdp []byte) ([]byte, error) {
	if len(sdp) == 0 || !c.relayed.Load() {
		return sdp, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), relayTimeout)
	defer cancel()
	return b.cfg.Relay.Answer(ctx, c.id, relayTagA, relayTagB, sdp)
}

// mediaInDialog passes a re-offer (answer false) or its answer (answer
// true) from the side fromA through the relay, when the call is relayed.
func (b *B2BUA) mediaInDialog(c *call, fromA, answer bool, sdp []byte) ([]byte, error) {
	if len(sdp) == 0 || !c.relayed.Load() {
		return sdp, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), relayTimeout)
	defer cancel()
	from, to := relayTags(fromA)
	if answer {
		return b.cfg.Relay.Answer(ctx, c.id, from, to, sdp)
	}
	return b.cfg.Relay.Offer(ctx, c.id, from, to, sdp)
}
