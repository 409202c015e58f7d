package nodeapi

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestParseLogOptions(t *testing.T) {
	ptr := func(n int64) *int64 { return &n }
	since := time.Date(2026, 3, 1, 10, 20, 30, 500_000_000, time.FixedZone("", 2*3600))
	for _, tc := range []struct {
		query string
		want  LogOptions
	}{
		{"", LogOptions{}},
		{"follow=true&timestamps=1&previous=", LogOptions{Follow: true, Timestamps: true, Previous: true}},
		{"follow=false&timestamps=0&previous=FALSE", LogOptions{}},
		{"tailLines=0", LogOptions{TailLines: ptr(0)}},
		{"tail=7", LogOptions{TailLines: ptr(7)}},
		{"tail=all&tailLines=3", LogOptions{}},
		{"limitBytes=1&sinceSeconds=3600", LogOptions{LimitBytes: ptr(1), SinceSeconds: ptr(3600)}},
		{"sinceTime=2026-03-01T10:20:30.5%2B02:00", LogOptions{SinceTime: &since}},
		{"sinceTime=null", LogOptions{}},
		{"stream=All&insecureSkipTLSVerifyBackend=true&unknown=1", LogOptions{}},
	} {
		q, err := url.ParseQuery(tc.query)
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseLogOptions(q)
		if err != nil {
			t.Errorf("parse %q: %v", tc.query, err)
			continue
		}
		if !sameOptions(got, tc.want) {
			t.Errorf("parse %q = %s, want %s", tc.query, describe(got), describe(tc.want))
		}
	}
}

func TestParseLogOptionsErrorsNameTheParameter(t *testing.T) {
	for query, param := range map[string]string{
		"tailLines=":           "tailLines",
		"tailLines=1.5":        "tailLines",
		"tail=-3":              "tail",
		"limitBytes=-1":        "limitBytes",
		"sinceSeconds=abc":     "sinceSeconds",
		"sinceTime=2026-03-01": "sinceTime",
		"stream=Stdout":        "stream",
	} {
		q, _ := url.ParseQuery(query)
		_, err := parseLogOptions(q)
		if err == nil || !strings.Contains(err.Error(), param) {
			t.Errorf("parse %q: error %v, want one naming %s", query, err, param)
		}
	}
}

func sameOptions(a, b LogOptions) bool {
	eqInt := func(x, y *int64) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	eqTime := func(x, y *time.Time) bool { return (x == nil) == (y == nil) && (x == nil || x.Equal(*y)) }
	return a.Container == b.Container && a.Follow == b.Follow && a.Timestamps == b.Timestamps &&
		a.Previous == b.Previous && eqInt(a.TailLines, b.TailLines) && eqInt(a.LimitBytes, b.LimitBytes) &&
		eqInt(a.SinceSeconds, b.SinceSeconds) && eqTime(a.SinceTime, b.SinceTime)
}

func describe(o LogOptions) string {
	num := func(v *int64) string {
		if v == nil {
			return "-"
		}
		return fmt.Sprint(*v)
	}
	since := "-"
	if o.SinceTime != nil {
		since = o.SinceTime.Format(time.RFC3339Nano)
	}
	return fmt.Sprintf("{follow=%t timestamps=%t previous=%t tailLines=%s limitBytes=%s sinceSeconds=%s sinceTime=%s}",
		o.Follow, o.Timestamps, o.Previous, num(o.TailLines), num(o.LimitBytes), num(o.SinceSeconds), since)
}
