package deps

import (
	_ "github.com/emiago/sipgo"
	_ "github.com/gaissmai/bart"
	_ "github.com/google/go-cmp/cmp"
	_ "github.com/icholy/digest"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "github.com/pion/sdp/v3"
	_ "github.com/pressly/goose/v3"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/redis/go-redis/v9"
	_ "golang.org/x/crypto/argon2"
	_ "golang.org/x/time/rate"
	_ "modernc.org/sqlite"
)
