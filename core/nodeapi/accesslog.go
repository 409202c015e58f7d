package nodeapi

import (
	"bufio"
	"context"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// requestLog collects what the handlers learn about a request, for its access-log line.
// Never put credentials in it.
type requestLog struct {
	user  string
	node  string
	pod   string
	error string
}

type requestLogKey struct{}

// requestLogOf returns the request's log record; a throwaway one outside accessLog.
func requestLogOf(r *http.Request) *requestLog {
	if rl, ok := r.Context().Value(requestLogKey{}).(*requestLog); ok {
		return rl
	}
	return &requestLog{}
}

// accessLog logs one line per request: method, path (never the query or headers, which may
// carry tokens), user, status.
func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rl := &requestLog{}
		rec := &recorder{ResponseWriter: w}
		next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), requestLogKey{}, rl)))

		level := slog.LevelInfo
		if r.URL.Path == "/healthz" {
			level = slog.LevelDebug // probes would drown the rest
		}
		attrs := []slog.Attr{
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.String("user", rl.user),
			slog.Int("status", rec.statusCode()),
			slog.Int64("bytes", rec.bytes),
			slog.Duration("duration", time.Since(start)),
			slog.String("remote", r.RemoteAddr),
		}
		if rl.node != "" {
			attrs = append(attrs, slog.String("node", rl.node))
		}
		if rl.pod != "" {
			attrs = append(attrs, slog.String("pod", rl.pod))
		}
		if rl.error != "" {
			attrs = append(attrs, slog.String("error", rl.error))
		}
		s.log.LogAttrs(r.Context(), level, "node API request", attrs...)
	})
}

// recorder remembers the status and counts the bytes of a response. It passes Flush through
// (and Unwrap, for http.ResponseController), which log streaming depends on.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(p)
	r.bytes += int64(n)
	return n, err
}

// FlushError is what http.ResponseController.Flush looks for first.
func (r *recorder) FlushError() error {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return http.NewResponseController(r.ResponseWriter).Flush()
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Hijack passes the connection on for exec's protocol upgrade (SPDY, WebSocket): the streaming
// library asks for http.Hijacker directly, not through http.ResponseController.
func (r *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if r.status == 0 {
		r.status = http.StatusSwitchingProtocols
	}
	return http.NewResponseController(r.ResponseWriter).Hijack()
}

func (r *recorder) statusCode() int {
	if r.status == 0 {
		return http.StatusOK // net/http's answer when a handler writes nothing
	}
	return r.status
}
