package nodeapi

import (
	"context"
	"crypto/tls"
	"fmt"
	"sync"

	"k8s.io/apiserver/pkg/server/dynamiccertificates"
)

// servingCert keeps the node API's serving certificate as its files say,
// with the API server's own machinery: a watch on the files reloads the
// pair when they change (a pair that does not load is ignored, and the
// last good one served), and the TLS config controller gives each new
// connection the newest. Connections already open keep theirs.
type servingCert struct {
	files *dynamiccertificates.DynamicCertKeyPairContent
	tls   *dynamiccertificates.DynamicServingCertificateController
}

// newServingCert loads the pair once, so that a bad pair fails New, and
// builds the TLS config controller over base (everything but the
// certificate).
func newServingCert(certFile, keyFile string, base *tls.Config) (*servingCert, error) {
	files, err := dynamiccertificates.NewDynamicServingContentFromFiles("node-api", certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("node API: load serving certificate %s: %w", certFile, err)
	}
	ctrl := dynamiccertificates.NewDynamicServingCertificateController(base, nil, files, nil, nil)
	files.AddListener(ctrl)
	if err := ctrl.RunOnce(); err != nil {
		return nil, fmt.Errorf("node API: serving certificate %s: %w", certFile, err)
	}
	return &servingCert{files: files, tls: ctrl}, nil
}

// config is the TLS config to serve with: each handshake asks the
// controller for the current one.
func (c *servingCert) config() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetConfigForClient: c.tls.GetConfigForClient}
}

// run watches the files and feeds the controller until ctx ends, and
// returns once both have stopped.
func (c *servingCert) run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { c.files.Run(ctx, 1) })
	wg.Go(func() { c.tls.Run(1, ctx.Done()) })
	wg.Wait()
}
