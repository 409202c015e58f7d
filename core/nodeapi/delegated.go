package nodeapi

import (
	"errors"
	"fmt"
	"os"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/apis/apiserver"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/authenticatorfactory"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/client-go/kubernetes"
)

// The kubelet's defaults for delegated auth.
const (
	tokenCacheTTL      = 2 * time.Minute
	tokenReviewTimeout = 10 * time.Second
	allowCacheTTL      = 5 * time.Minute
	denyCacheTTL       = 30 * time.Second
)

// webhookBackoff retries TokenReviews and SubjectAccessReviews that fail for transient reasons,
// for about ten seconds in all.
func webhookBackoff() *wait.Backoff {
	return &wait.Backoff{Duration: 500 * time.Millisecond, Factor: 1.5, Jitter: 0.2, Steps: 5}
}

// DelegatedAuth builds the node API's authenticator and authorizer the way the kubelet does,
// delegating to the API server: client certificates are verified against clientCAFile (and
// name the user by their common name), bearer tokens go through TokenReview, and every decision
// through SubjectAccessReview; answers are cached. Anonymous requests are not authenticated.
// An empty clientCAFile turns client-certificate authentication off. The CA file is read once:
// restart the agent to take a new one.
func DelegatedAuth(client kubernetes.Interface, clientCAFile string) (authenticator.Request, authorizer.Authorizer, error) {
	if client == nil {
		return nil, nil, errors.New("delegated auth: an API server client is required")
	}
	authnConfig := authenticatorfactory.DelegatingAuthenticatorConfig{
		Anonymous:                &apiserver.AnonymousAuthConfig{Enabled: false},
		TokenAccessReviewClient:  client.AuthenticationV1(),
		TokenAccessReviewTimeout: tokenReviewTimeout,
		WebhookRetryBackoff:      webhookBackoff(),
		CacheTTL:                 tokenCacheTTL,
	}
	if clientCAFile != "" {
		bundle, err := os.ReadFile(clientCAFile)
		if err != nil {
			return nil, nil, fmt.Errorf("delegated auth: read client CA: %w", err)
		}
		ca, err := dynamiccertificates.NewStaticCAContent("client-ca-bundle", bundle)
		if err != nil {
			return nil, nil, fmt.Errorf("delegated auth: client CA %s: %w", clientCAFile, err)
		}
		authnConfig.ClientCertificateCAContentProvider = ca
	}
	authn, _, err := authnConfig.New()
	if err != nil {
		return nil, nil, fmt.Errorf("delegated auth: build authenticator: %w", err)
	}

	authz, err := authorizerfactory.DelegatingAuthorizerConfig{
		SubjectAccessReviewClient: client.AuthorizationV1(),
		AllowCacheTTL:             allowCacheTTL,
		DenyCacheTTL:              denyCacheTTL,
		WebhookRetryBackoff:       webhookBackoff(),
	}.New()
	if err != nil {
		return nil, nil, fmt.Errorf("delegated auth: build authorizer: %w", err)
	}
	return authn, authz, nil
}
