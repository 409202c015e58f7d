package nodeapi

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// parseLogOptions reads the kubelet's container-log query parameters with the API server's
// rules (those of v1.PodLogOptions). Errors name the parameter; unknown parameters are ignored,
// as the kubelet ignores them.
func parseLogOptions(q url.Values) (LogOptions, error) {
	var opts LogOptions
	opts.Follow = queryBool(q, "follow")
	opts.Timestamps = queryBool(q, "timestamps")
	opts.Previous = queryBool(q, "previous")

	var err error
	tailParam := "tailLines"
	tail, hasTail := q["tailLines"]
	// "tail" is the older spelling; "all" means no tail.
	if old := q.Get("tail"); old != "" {
		tailParam, tail, hasTail = "tail", []string{old}, old != "all"
	}
	if hasTail {
		if opts.TailLines, err = queryInt(tailParam, tail, 0); err != nil {
			return LogOptions{}, err
		}
	}
	if v, ok := q["limitBytes"]; ok {
		if opts.LimitBytes, err = queryInt("limitBytes", v, 1); err != nil {
			return LogOptions{}, err
		}
	}
	if v, ok := q["sinceSeconds"]; ok {
		if opts.SinceSeconds, err = queryInt("sinceSeconds", v, 1); err != nil {
			return LogOptions{}, err
		}
	}
	// "null" comes from old clients that built the query from JSON; it means unset.
	if v := q.Get("sinceTime"); v != "" && v != "null" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return LogOptions{}, fmt.Errorf("invalid query parameter sinceTime %q: want an RFC3339 time", v)
		}
		opts.SinceTime = &t
	}
	if opts.SinceSeconds != nil && opts.SinceTime != nil {
		return LogOptions{}, errors.New("invalid query parameters sinceSeconds and sinceTime: at most one may be set")
	}
	// LogOptions has no stream selection: refuse a request for one stream rather than answer
	// with both.
	if v := q.Get("stream"); v != "" && v != "All" {
		return LogOptions{}, fmt.Errorf("invalid query parameter stream %q: only All is supported", v)
	}
	return opts, nil
}

// queryBool reads a flag as the API server does: absent, "false" and "0" are false; anything
// else, even an empty value, is true.
func queryBool(q url.Values, name string) bool {
	v, ok := q[name]
	if !ok || len(v) == 0 {
		return false
	}
	return v[0] != "0" && !strings.EqualFold(v[0], "false")
}

// queryInt reads the first value of an integer parameter that must be at least min.
func queryInt(name string, values []string, min int64) (*int64, error) {
	if len(values) == 0 {
		return nil, nil
	}
	n, err := strconv.ParseInt(values[0], 10, 64)
	if err != nil {
		return nil, fmt.Errorf("invalid query parameter %s %q: want an integer", name, values[0])
	}
	if n < min {
		return nil, fmt.Errorf("invalid query parameter %s %d: must be at least %d", name, n, min)
	}
	return &n, nil
}
