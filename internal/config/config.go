// Package config is sipward's process configuration: where it listens, which
// store it uses, its secrets. Every setting is a flag with an environment
// twin (--http-addr and SIPWARD_HTTP_ADDR); the flag wins. Customer
// configuration (accounts, endpoints, users) is not here: it lives in the
// store and is changed through the API.
package config

import (
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/sipward/sipward/internal/rtpengine"
)

// Config of `sipward serve`. The zero value is not valid; use Default.
type Config struct {
	HTTPAddr   string // REST API, web UI, /metrics
	DB         string // sqlite:<path> or postgres://…
	AdminToken string // operator bearer token; generated at first start when empty
	KeyFile    string // hex AES-256 key sealing egress passwords; created when missing
	SecretKey  string // the key itself (hex), instead of KeyFile
	Realm      string // digest realm of SIP users
	LogLevel   string // debug | info | warn | error
	LogFormat  string // text | json

	SIPAddr          string        // UDP and TCP
	SIPSAddr         string        // TLS, when TLSCert and TLSKey are set
	TLSCert, TLSKey  string        // PEM files
	Upstream         []string      // SIP URIs of the routing core, in failover order
	CoreAddr         []string      // CIDRs the core sends calls from
	DigestAlgorithms []string      // offered in this order: MD5, SHA-256
	ShutdownTimeout  time.Duration // drain time on SIGTERM
	ExternalHost     string        // host sipward puts in Via/Contact when behind NAT; default: listen IP
	RTPEngine        string        // media relays: udp:HOST:PORT[,udp:HOST:PORT…] (rtpengine's ng protocol); empty: no relay
	Redis            string        // host:port or redis:// URL of the shared live state; empty: in-process
	RedisPrefix      string        // key prefix in Redis (several clusters may share one Redis)
	ChannelLease     time.Duration // a call's channels end this long after the node last renewed them
	Keepalive        time.Duration // in-dialog OPTIONS interval; 0 disables
	FraudThreshold   int           // failures per source that trigger a ban
	FraudWindow      time.Duration // within this window
	FraudBan         time.Duration // for this long
	FraudGrace       time.Duration // a credential-less INVITE's challenge unanswered this long counts
	FraudTrustAuth   time.Duration // a source that authenticated is a customer this long; negative: never
	FirewallRate     int           // UDP datagrams/s one untrusted source may send; 0: 200, negative: no guard
	TCPMaxConns      int           // TCP/TLS connections one untrusted source may hold open; negative: no limit
	TCPConnRate      int           // TCP/TLS connections one untrusted source may open per second; negative: no limit
	TCPHeaderTimeout time.Duration // a message on TCP/TLS must arrive within this of its first byte
	TCPIdleTimeout   time.Duration // a TCP/TLS connection idle this long is closed (unless it carries a registration)
	RingTimeout      time.Duration // how long leg B may ring before sipward gives up
	SessionMinSE     time.Duration // the smallest session interval (RFC 4028 Min-SE) sipward accepts

	// Voicemail and its mail.
	SMTPURL                string        // smtp://user:pass@host:587 (STARTTLS when offered) or smtps://…; empty: nothing mailed
	SMTPRequireTLS         bool          // refuse to mail over a plain connection
	SMTPFrom               string        // sender of voicemail mail
	VoicemailMaxLength     time.Duration // longest message
	VoicemailSilence       time.Duration // a message ends after this much silence; 0: never
	VoicemailQuotaMessages int           // messages one mailbox holds
	VoicemailQuotaSeconds  int           // seconds of messages one mailbox holds
	AuditRetention         time.Duration // audit entries older than this are pruned; 0 keeps them forever
	SIPT1                  time.Duration // SIP timer T1 (RTT estimate): retransmissions and transaction timeouts scale with it
	TxLinger               time.Duration // how long a finished transaction absorbs retransmissions (timers D, J, L, M)
	RegMinExpires          time.Duration // shorter registrations get 423
	RegMaxExpires          time.Duration // longer ones are cut to this
	RegMaxContacts         int           // contacts per SIP user; the oldest is replaced
	NATPingInterval        time.Duration // OPTIONS to registered devices of users with NAT ping on
	GCHeapFloor            int           // MiB of heap below which the collector waits; -1: auto, 0: off

	AdminPassword   string        // web UI password of the operator login "admin"; generated at first start when empty
	UISecureCookies bool          // mark web UI cookies Secure on plain HTTP (behind a TLS-terminating proxy)
	UISessionTTL    time.Duration // how long a web UI sign-in lasts; 0: 12 hours

	Version string // the binary's version (set by the command, not a flag): shown in the list of nodes

	envErrs []error // environment twins that did not parse
}

// Default returns the embedded defaults: SIP on :5060, HTTP on :8080, data in ./sipward.db.
func Default() Config {
	host, _ := os.Hostname()
	if host == "" {
		host = "sipward"
	}
	return Config{
		HTTPAddr:               ":8080",
		DB:                     "sqlite:sipward.db",
		KeyFile:                "sipward.key",
		Realm:                  host,
		LogLevel:               "info",
		LogFormat:              "text",
		SIPAddr:                ":5060",
		SIPSAddr:               ":5061",
		DigestAlgorithms:       []string{"MD5"},
		ShutdownTimeout:        10 * time.Second,
		Keepalive:              30 * time.Second,
		FraudThreshold:         10,
		FraudWindow:            time.Minute,
		FraudBan:               time.Hour,
		FraudGrace:             10 * time.Second,
		TCPMaxConns:            200,
		TCPConnRate:            100,
		TCPHeaderTimeout:       10 * time.Second,
		TCPIdleTimeout:         2 * time.Minute,
		FraudTrustAuth:         time.Hour,
		RingTimeout:            3 * time.Minute,
		SessionMinSE:           90 * time.Second,
		SMTPFrom:               "voicemail@sipward.invalid",
		VoicemailMaxLength:     120 * time.Second,
		VoicemailSilence:       10 * time.Second,
		VoicemailQuotaMessages: 100,
		VoicemailQuotaSeconds:  3600,
		AuditRetention:         400 * 24 * time.Hour,
		SIPT1:                  500 * time.Millisecond,
		TxLinger:               5 * time.Second,
		RegMinExpires:          time.Minute,
		RegMaxExpires:          2 * time.Hour,
		RegMaxContacts:         5,
		NATPingInterval:        time.Minute,
		RedisPrefix:            "sipward:",
		ChannelLease:           30 * time.Second,
		GCHeapFloor:            -1,
	}
}

// envName is the environment twin of a flag: http-addr → SIPWARD_HTTP_ADDR.
func envName(flagName string) string {
	return "SIPWARD_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// list is a flag.Value of comma-separated or repeated values.
type list struct {
	p   *[]string
	set bool
}

func (l *list) String() string {
	if l.p == nil {
		return ""
	}
	return strings.Join(*l.p, ",")
}

func (l *list) Set(s string) error {
	if !l.set {
		*l.p = nil
		l.set = true
	}
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l.p = append(*l.p, v)
		}
	}
	return nil
}

// Register adds the flags of c to fs, with defaults taken from c and then
// from the environment twins.
func (c *Config) Register(fs *flag.FlagSet) {
	str := func(p *string, name, usage string) {
		if v, ok := os.LookupEnv(envName(name)); ok {
			*p = v
		}
		fs.StringVar(p, name, *p, usage+" (env "+envName(name)+")")
	}
	lst := func(p *[]string, name, usage string) {
		l := &list{p: p}
		if v, ok := os.LookupEnv(envName(name)); ok {
			_ = l.Set(v)
			l.set = false
		}
		fs.Var(l, name, usage+"; comma-separated or repeated (env "+envName(name)+")")
	}
	str(&c.HTTPAddr, "http-addr", "HTTP listen address: REST API, web UI, /metrics")
	str(&c.DB, "db", "configuration store: sqlite:<path> or postgres://user@host/db")
	str(&c.AdminToken, "admin-token", "operator API token; when empty one is generated at first start and printed once")
	str(&c.KeyFile, "key-file", "file holding the AES-256 key that seals egress passwords; created when missing")
	str(&c.SecretKey, "secret-key", "the sealing key itself, 64 hex digits (instead of --key-file)")
	str(&c.Realm, "realm", "digest realm of SIP users")
	str(&c.LogLevel, "log-level", "debug, info, warn or error")
	str(&c.LogFormat, "log-format", "text or json")
	str(&c.SIPAddr, "sip-addr", "SIP listen address (UDP and TCP)")
	str(&c.SIPSAddr, "sips-addr", "SIP over TLS listen address (with --tls-cert and --tls-key)")
	str(&c.TLSCert, "tls-cert", "PEM certificate for SIP over TLS")
	str(&c.TLSKey, "tls-key", "PEM private key for SIP over TLS")
	lst(&c.Upstream, "upstream", "SIP URI of the routing core, in failover order")
	lst(&c.CoreAddr, "core-addr", "address or CIDR the routing core sends calls from")
	lst(&c.DigestAlgorithms, "digest-algorithms", "digest algorithms offered, in order: MD5, SHA-256")
	str(&c.ExternalHost, "external-host", "host name or IP sipward puts in Via and Contact (default: the listen IP)")
	dur := func(p *time.Duration, name, usage string) {
		if v, ok := os.LookupEnv(envName(name)); ok {
			d, err := time.ParseDuration(v)
			if err != nil {
				c.envErrs = append(c.envErrs, fmt.Errorf("%s: %q: not a duration such as 30s", envName(name), v))
			} else {
				*p = d
			}
		}
		fs.DurationVar(p, name, *p, usage+" (env "+envName(name)+")")
	}
	days := func(p *time.Duration, name, usage string) { // a duration that also takes days: "400d"
		if v, ok := os.LookupEnv(envName(name)); ok {
			if err := (*dayDuration)(p).Set(v); err != nil {
				c.envErrs = append(c.envErrs, fmt.Errorf("%s: %w", envName(name), err))
			}
		}
		fs.Var((*dayDuration)(p), name, usage+" (env "+envName(name)+")")
	}
	num := func(p *int, name, usage string) {
		if v, ok := os.LookupEnv(envName(name)); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				c.envErrs = append(c.envErrs, fmt.Errorf("%s: %q: not a number", envName(name), v))
			} else {
				*p = n
			}
		}
		fs.IntVar(p, name, *p, usage+" (env "+envName(name)+")")
	}
	str(&c.RTPEngine, "rtpengine", "media relays, udp:HOST:PORT[,udp:HOST:PORT…] (rtpengine's ng protocol): calls of parties behind NAT (media_relay auto) or with media_relay always have their media anchored there, new calls spread over the relays, a dead one skipped; empty: no relay (symmetric RTP only)")
	str(&c.Redis, "redis", "Redis for live state shared by nodes: host:port, redis://[user:pass@]host:port[/db] (rediss:// for TLS), or Sentinel: redis://sentinel:26379?master_name=NAME&addr=sentinel2:26379; empty: in-process")
	str(&c.RedisPrefix, "redis-prefix", "prefix of sipward's keys in Redis; nodes of one cluster must share it")
	dur(&c.ChannelLease, "channel-lease", "how long a call's channels stay taken after its node last renewed them (every third of it while the call lives): the channels of a node that died come back within this")
	dur(&c.ShutdownTimeout, "shutdown-timeout", "how long SIGTERM waits for calls and requests to drain")
	dur(&c.Keepalive, "keepalive", "interval of in-dialog OPTIONS to both legs of a call; 0 disables")
	num(&c.FraudThreshold, "fraud-threshold", "failed authentications (or challenges of credential-less INVITEs left unanswered) per source that ban it; negative disables")
	dur(&c.FraudWindow, "fraud-window", "window in which fraud-threshold failures ban a source")
	dur(&c.FraudBan, "fraud-ban", "how long a source banned by fraud detection stays banned")
	dur(&c.FraudGrace, "fraud-grace", "how long a source has to answer the challenge of a credential-less INVITE before its challenges count towards fraud-threshold (at most fraud-window)")
	dur(&c.FraudTrustAuth, "fraud-trust-authenticated", "how long a source that authenticated is known as a customer: its credential-less INVITEs are not counted and firewall-rate does not apply to it; 0 or negative: never")
	dur(&c.RingTimeout, "ring-timeout", "how long the called side may ring before sipward cancels the call")
	dur(&c.SessionMinSE, "session-min-se", "the smallest session-timer interval accepted (RFC 4028 Min-SE; shorter is answered 422); below 90s only for tests")
	str(&c.SMTPURL, "smtp-url", "SMTP server voicemail is mailed through: smtp://[user:pass@]host[:587] (STARTTLS when the server offers it) or smtps://[user:pass@]host[:465] (TLS from the start); empty: messages are not mailed")
	str(&c.SMTPFrom, "smtp-from", "sender address of voicemail mail")
	dur(&c.VoicemailMaxLength, "voicemail-max-length", "longest voicemail message; recording stops there")
	dur(&c.VoicemailSilence, "voicemail-silence", "a voicemail message ends after this much silence; 0: silence does not end it")
	num(&c.VoicemailQuotaMessages, "voicemail-quota-messages", "messages one mailbox holds; a full mailbox tells callers so")
	days(&c.AuditRetention, "audit-retention", "how long the audit trail keeps an entry (such as 400d or 72h); 0: forever")
	num(&c.VoicemailQuotaSeconds, "voicemail-quota-seconds", "seconds of messages one mailbox holds; a full mailbox tells callers so")
	dur(&c.SIPT1, "sip-t1", "SIP timer T1, the round-trip estimate that retransmissions and transaction timeouts (64×T1) scale with")
	dur(&c.TxLinger, "tx-linger", "how long a finished SIP transaction is kept to absorb retransmissions (RFC 3261 timers D, J, L and M; Kamailio's tm wait_timer is 5s); at most 64×sip-t1, the RFC's value, which keeps about six times the memory")
	dur(&c.RegMinExpires, "register-min-expires", "registrations asking for less get 423 Interval Too Brief")
	dur(&c.RegMaxExpires, "register-max-expires", "registrations asking for more are cut to this")
	num(&c.RegMaxContacts, "register-max-contacts", "contacts one SIP user may register; a new one replaces the oldest")
	dur(&c.NATPingInterval, "nat-ping-interval", "interval of the OPTIONS pings to registered devices of SIP users with NAT ping enabled")
	num(&c.FirewallRate, "firewall-rate", "UDP datagrams per second one untrusted source may send (IP endpoints, the core and sources that authenticated within fraud-trust-authenticated are exempt); 0 means 200, negative disables the guard")
	num(&c.TCPMaxConns, "tcp-max-conns", "TCP/TLS connections one source may hold open (IP endpoints, the core and sources that authenticated are exempt); negative: no limit")
	num(&c.TCPConnRate, "tcp-conn-rate", "TCP/TLS connections one source may open per second (same exemptions); over it, or over tcp-max-conns, a connection is closed and counts towards fraud-threshold; negative: no limit")
	dur(&c.TCPHeaderTimeout, "tcp-header-timeout", "a SIP message on TCP/TLS (and a TLS handshake) must arrive within this of its first byte, or the connection is closed")
	dur(&c.TCPIdleTimeout, "tcp-idle-timeout", "a TCP/TLS connection that sends nothing for this long is closed; one that carries a registration stays open until the registration expires")
	num(&c.GCHeapFloor, "gc-heap-floor", "MiB of heap the Go collector lets the process reach before it collects (above it GOGC applies); fewer collections at load, paid in memory; -1 means an eighth of the machine's memory (or of the cgroup's limit, if lower), at most 1024; 0 leaves it to GOGC alone")
	str(&c.AdminPassword, "admin-password", `web UI password of the operator login "admin" (at least 12 characters); when empty and no operator login exists, one is generated at first start and printed once`)
	boolean := func(p *bool, name, usage string) {
		if v, ok := os.LookupEnv(envName(name)); ok {
			b, err := strconv.ParseBool(v)
			if err != nil {
				c.envErrs = append(c.envErrs, fmt.Errorf("%s: %q: not true or false", envName(name), v))
			} else {
				*p = b
			}
		}
		fs.BoolVar(p, name, *p, usage+" (env "+envName(name)+")")
	}
	boolean(&c.SMTPRequireTLS, "smtp-require-tls", "refuse to mail over a connection that is not encrypted (smtp:// then needs STARTTLS)")
	boolean(&c.UISecureCookies, "ui-secure-cookies", "mark web UI cookies Secure even on plain HTTP: set it when a TLS-terminating proxy serves the UI")
	dur(&c.UISessionTTL, "ui-session-ttl", "how long a web UI sign-in lasts; 0 means 12h")
}

// Validate checks c and names the culprit.
func (c *Config) Validate() error {
	if len(c.envErrs) > 0 {
		return c.envErrs[0]
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"shutdown-timeout", c.ShutdownTimeout}, {"keepalive", c.Keepalive}, {"fraud-window", c.FraudWindow}, {"fraud-ban", c.FraudBan}, {"fraud-grace", c.FraudGrace}} {
		if d.v < 0 {
			return fmt.Errorf("%s: %s: must not be negative", d.name, d.v)
		}
	}
	if c.TCPHeaderTimeout < 100*time.Millisecond || c.TCPIdleTimeout < time.Second {
		return fmt.Errorf("tcp-header-timeout/tcp-idle-timeout: %s/%s: want at least 100ms and 1s", c.TCPHeaderTimeout, c.TCPIdleTimeout)
	}
	if c.TCPMaxConns == 0 || c.TCPConnRate == 0 {
		return fmt.Errorf("tcp-max-conns/tcp-conn-rate: %d/%d: want a limit, or a negative number for none", c.TCPMaxConns, c.TCPConnRate)
	}
	if c.FraudGrace < 100*time.Millisecond {
		return fmt.Errorf("fraud-grace: %s: must be at least 100ms (a UA needs a round trip to answer a challenge)", c.FraudGrace)
	}
	if c.RTPEngine != "" {
		if _, err := rtpengine.ParseAddrs(c.RTPEngine); err != nil {
			return fmt.Errorf("rtpengine: %v", err)
		}
	}
	if c.SessionMinSE < time.Second || c.SessionMinSE%time.Second != 0 {
		return fmt.Errorf("session-min-se: %s: must be whole seconds, at least 1s", c.SessionMinSE)
	}
	if c.VoicemailMaxLength < 5*time.Second || c.VoicemailMaxLength > time.Hour {
		return fmt.Errorf("voicemail-max-length: %s: must be between 5s and 1h", c.VoicemailMaxLength)
	}
	if c.VoicemailSilence < 0 || c.VoicemailSilence > 0 && c.VoicemailSilence < time.Second {
		return fmt.Errorf("voicemail-silence: %s: must be 0 (off) or at least 1s", c.VoicemailSilence)
	}
	if c.AuditRetention < 0 || c.AuditRetention > 0 && c.AuditRetention < time.Hour {
		return fmt.Errorf("audit-retention: %s: must be 0 (keep forever) or at least 1h", c.AuditRetention)
	}
	if c.VoicemailQuotaMessages < 1 || c.VoicemailQuotaSeconds < 1 {
		return fmt.Errorf("voicemail-quota-messages/voicemail-quota-seconds: %d/%d: must be at least 1", c.VoicemailQuotaMessages, c.VoicemailQuotaSeconds)
	}
	if c.RingTimeout < time.Second {
		return fmt.Errorf("ring-timeout: %s: must be at least 1s", c.RingTimeout)
	}
	if c.ChannelLease < 3*time.Second || c.ChannelLease > 24*time.Hour {
		return fmt.Errorf("channel-lease: %s: must be between 3s and 24h (renewed every third of it)", c.ChannelLease)
	}
	if c.SIPT1 < 10*time.Millisecond || c.SIPT1 > 5*time.Second {
		return fmt.Errorf("sip-t1: %s: must be between 10ms and 5s (RFC 3261 default 500ms)", c.SIPT1)
	}
	if c.TxLinger < 100*time.Millisecond || c.TxLinger > time.Minute {
		return fmt.Errorf("tx-linger: %s: must be between 100ms and 1m (it is capped at 64×sip-t1)", c.TxLinger)
	}
	if c.RegMinExpires < time.Second || c.RegMaxExpires < c.RegMinExpires {
		return fmt.Errorf("register-min-expires/register-max-expires: %s/%s: want 1s ≤ min ≤ max", c.RegMinExpires, c.RegMaxExpires)
	}
	if c.NATPingInterval < time.Second {
		return fmt.Errorf("nat-ping-interval: %s: must be at least 1s", c.NATPingInterval)
	}
	if c.GCHeapFloor < -1 {
		return fmt.Errorf("gc-heap-floor: %d: must be -1 (auto), 0 (off) or a size in MiB", c.GCHeapFloor)
	}
	if c.RegMaxContacts < 1 || c.RegMaxContacts > 100 {
		return fmt.Errorf("register-max-contacts: %d: must be between 1 and 100", c.RegMaxContacts)
	}
	for _, a := range []struct{ name, v string }{{"http-addr", c.HTTPAddr}, {"sip-addr", c.SIPAddr}, {"sips-addr", c.SIPSAddr}} {
		if a.v == "" && a.name != "http-addr" {
			continue
		}
		if _, port, err := net.SplitHostPort(a.v); err != nil {
			return fmt.Errorf("%s: %q: want host:port or :port", a.name, a.v)
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			return fmt.Errorf("%s: %q: invalid port", a.name, a.v)
		}
	}
	if c.DB == "" {
		return fmt.Errorf("db: required (sqlite:<path> or postgres://…)")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return fmt.Errorf("tls-cert and tls-key: give both or neither")
	}
	if c.Realm == "" {
		return fmt.Errorf("realm: required")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log-level: %q: want debug, info, warn or error", c.LogLevel)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return fmt.Errorf("log-format: %q: want text or json", c.LogFormat)
	}
	for i, a := range c.DigestAlgorithms {
		switch strings.ToUpper(a) {
		case "MD5", "SHA-256":
			c.DigestAlgorithms[i] = strings.ToUpper(a)
		default:
			return fmt.Errorf("digest-algorithms[%d]: %q: want MD5 or SHA-256", i, a)
		}
	}
	if len(c.DigestAlgorithms) == 0 {
		return fmt.Errorf("digest-algorithms: at least one is needed")
	}
	if _, err := c.CorePrefixes(); err != nil {
		return err
	}
	if _, err := c.Upstreams(); err != nil {
		return err
	}
	return nil
}

// CorePrefixes returns --core-addr as prefixes: a bare address is a host
// prefix, an IPv4-mapped one is IPv4.
func (c *Config) CorePrefixes() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for i, a := range c.CoreAddr {
		p, err := netip.ParsePrefix(strings.TrimSpace(a))
		if err != nil {
			addr, aerr := netip.ParseAddr(strings.TrimSpace(a))
			if aerr != nil {
				return nil, fmt.Errorf("core-addr[%d]: %q: not an address or CIDR", i, a)
			}
			p = netip.PrefixFrom(addr, addr.BitLen())
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// Upstreams returns --upstream as SIP URIs, in failover order.
func (c *Config) Upstreams() ([]sip.Uri, error) {
	var out []sip.Uri
	for i, u := range c.Upstream {
		var uri sip.Uri
		if err := sip.ParseUri(u, &uri); err != nil || uri.Host == "" {
			return nil, fmt.Errorf("upstream[%d]: %q: not a SIP URI (sip:host[:port][;transport=tcp])", i, u)
		}
		out = append(out, uri)
	}
	return out, nil
}

// dayDuration is a time.Duration flag that also takes days ("400d").
type dayDuration time.Duration

func (d *dayDuration) String() string {
	v := time.Duration(*d)
	if v > 0 && v%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(v/(24*time.Hour)), 10) + "d"
	}
	return v.String()
}

func (d *dayDuration) Set(s string) error {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		v, err := strconv.ParseInt(n, 10, 32)
		if err != nil || v < 0 {
			return fmt.Errorf("%q: not a number of days such as 400d", s)
		}
		*d = dayDuration(time.Duration(v) * 24 * time.Hour)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q: not a duration such as 400d or 72h", s)
	}
	*d = dayDuration(v)
	return nil
}
