// Package digest is the server side of SIP digest authentication
// (RFC 3261 §22, RFC 2617, RFC 7616, RFC 8760): HA1 digests, challenges,
// stateless signed nonces, credentials parsing, response verification and
// nonce-count replay protection. It opens no sockets and knows nothing of SIP
// transactions; the authn stage wraps it. [Answer] (client.go) is the client
// side, for the B2BUA's own INVITEs to a party that challenges them.
//
// # Flow
//
// Build one [Authenticator] at load time with [New] (realm, algorithms in
// preference order, a shared [Nonces] key, a [NonceCounts]). Then, per request:
//
//  1. No credentials for our realm: answer with [Authenticator.Challenge].
//     [KindFor] tells which status and header pair to use (401 +
//     WWW-Authenticate for REGISTER, 407 + Proxy-Authenticate otherwise).
//  2. Parse the Authorization / Proxy-Authorization value with
//     [ParseCredentials]. An error means a malformed or unsupported header
//     (auth-int, -sess, userhash): answer 400, or challenge again.
//  3. Look up the user's stored HA1 for c.Algorithm by (realm, c.Username)
//     exactly as sent, and call [Authenticator.Check] with it, or with ""
//     when there is no such user or no HA1 for that algorithm.
//  4. Act on the [Result]: Ok passes; StaleNonce challenges again with
//     stale=true; BadHA1 is a configuration error (a technical failure, not
//     a rejection); every other Result challenges again without stale.
//
// # The caller's contract
//
//   - Unknown user and wrong password must get the same answer, after the same
//     work. Pass ha1 == "" for an unknown user: Check then verifies against
//     [DummyHA1], a random per-process value, and returns BadResponse whatever
//     the outcome, so neither the answer nor the timing tells an attacker
//     whether the user exists. Do not short-cut unknown users before Check.
//   - Never log passwords, HA1 values, expected responses or the Response field
//     of credentials. Username, realm, uri, algorithm and the Result are fine.
//   - Never challenge ACK or CANCEL (RFC 3261 §22.1). The ACK for a 2xx carries
//     the INVITE's credentials unchanged (§13.2.2.4): it verifies only with
//     method "INVITE", and it reuses the INVITE's nc, so it is by design a
//     replay; authenticate the dialog, not its ACK.
//   - The source address given to Challenge and Check must be the real socket
//     peer (pipeline.Request.Source), never a Via or Contact value.
//
// # Replay protection
//
// Nonces are bound to the source address and expire after [Nonces.Lifetime]
// (default 5 minutes); they need no state and are valid on every node that
// shares the key. Within a nonce's lifetime, credentials with qop=auth are
// protected by the nonce count: [NonceCounts] accepts each nc only if it is
// greater than every nc seen for that nonce. [LocalCounts] keeps that state in
// process, which is exact on one node; a Redis implementation comes with
// scale-out so that a replay sent to another node is caught too. Credentials
// without qop (the RFC 2069 form) carry no nc: their only replay protection is
// the nonce expiry and the source-address binding.
//
// # Deliberate choices
//
//   - Response hex is compared case-insensitively (RFC grammar says lower
//     case; Kamailio also accepts upper case).
//   - The digest-uri is hashed exactly as sent. Check compares it with the
//     Request-URI loosely: same host (and port when both carry one), and the
//     same user part when the digest-uri has one. A strict comparison would
//     reject SIPp, which sends uri="sip:host:port" on an INVITE to
//     sip:100@host:port.
//   - A username is looked up exactly as sent: sipsak's "alice@" is not mapped
//     to "alice" (its HA1 is computed over "alice@", so alice's stored HA1
//     cannot verify it anyway).
//   - Only qop=auth and the non-session algorithms are accepted, because only
//     they are offered.
package digest
