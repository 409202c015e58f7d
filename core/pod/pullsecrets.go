package pod

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/distribution/reference"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
)

// pullWithSecrets calls PullImage with the credentials the pod's
// imagePullSecrets hold for the image's registry, as the kubelet's keyring
// does: each matching credential in turn (the most specific first) until
// the registry accepts one, and none at all when nothing matches. A secret
// that cannot be read is skipped with a warning: the pull may still work.
// Credentials are never logged.
func (c *imagePuller) pullWithSecrets(ctx context.Context, pod *corev1.Pod, req *runtimev1.PullImageRequest) (*runtimev1.PullImageResponse, error) {
	creds := c.pullCredentials(ctx, pod, req.Image)
	if len(creds) == 0 {
		return c.runtime.PullImage(ctx, req)
	}
	var err error
	for _, cred := range creds {
		withAuth := proto.CloneOf(req)
		withAuth.Auth = cred.auth
		var resp *runtimev1.PullImageResponse
		resp, err = c.runtime.PullImage(ctx, withAuth)
		if code := status.Code(err); code != codes.PermissionDenied && code != codes.Unauthenticated {
			return resp, err
		}
	}
	return nil, err
}

// pullCredentials reads the pod's imagePullSecrets and returns the
// credentials that match image.
func (c *imagePuller) pullCredentials(ctx context.Context, pod *corev1.Pod, image string) []registryCredential {
	if len(pod.Spec.ImagePullSecrets) == 0 {
		return nil
	}
	var secrets []*corev1.Secret
	for _, ref := range pod.Spec.ImagePullSecrets {
		if ref.Name == "" {
			continue
		}
		s, err := c.client.CoreV1().Secrets(pod.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			c.log.Warn("read image pull secret", "pod", pod.Namespace+"/"+pod.Name, "secret", ref.Name, "err", err)
			c.events.Eventf(pod, corev1.EventTypeWarning, "FailedToRetrieveImagePullSecret",
				"Unable to retrieve some image pull secrets (%s); attempting to pull the image may not succeed.", ref.Name)
			continue
		}
		secrets = append(secrets, s)
	}
	creds, errs := credentialsFor(image, secrets)
	for _, err := range errs {
		c.log.Warn("unusable image pull secret", "pod", pod.Namespace+"/"+pod.Name, "err", err)
	}
	return creds
}

// registryCredential is one entry of a docker config that matches an image.
type registryCredential struct {
	// key is the entry's registry key with its scheme removed, kept to
	// order matches (longer is more specific).
	key  string
	auth *runtimev1.RegistryAuth
}

// dockerConfigEntry is one registry's entry in a .dockerconfigjson or
// .dockercfg.
type dockerConfigEntry struct {
	Username      string `json:"username"`
	Password      string `json:"password"`
	Auth          string `json:"auth"`
	IdentityToken string `json:"identitytoken"`
}

// credentialsFor returns the credentials of the secrets (of type
// kubernetes.io/dockerconfigjson or kubernetes.io/dockercfg) that match
// image, the most specific first, and why any secret could not be used. The
// errors name the secret, never its content.
func credentialsFor(image string, secrets []*corev1.Secret) ([]registryCredential, []error) {
	host, path, err := registryOf(image)
	if err != nil {
		return nil, []error{err}
	}
	var creds []registryCredential
	var errs []error
	for _, s := range secrets {
		entries, err := dockerConfigEntries(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("secret %s/%s: %w", s.Namespace, s.Name, err))
			continue
		}
		// Map order is random: sort for a stable order of equal matches.
		keys := make([]string, 0, len(entries))
		for k := range entries {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			key, ok := matchKey(k, host, path)
			if !ok {
				continue
			}
			auth, err := entries[k].registryAuth()
			if err != nil {
				errs = append(errs, fmt.Errorf("secret %s/%s, registry %s: %w", s.Namespace, s.Name, k, err))
				continue
			}
			creds = append(creds, registryCredential{key: key, auth: auth})
		}
	}
	sort.SliceStable(creds, func(i, j int) bool { return len(creds[i].key) > len(creds[j].key) })
	return creds, errs
}

func dockerConfigEntries(s *corev1.Secret) (map[string]dockerConfigEntry, error) {
	switch s.Type {
	case corev1.SecretTypeDockerConfigJson:
		var cfg struct {
			Auths map[string]dockerConfigEntry `json:"auths"`
		}
		if err := json.Unmarshal(s.Data[corev1.DockerConfigJsonKey], &cfg); err != nil {
			return nil, fmt.Errorf("%s is not a docker config: %v", corev1.DockerConfigJsonKey, jsonProblem(err))
		}
		return cfg.Auths, nil
	case corev1.SecretTypeDockercfg:
		var cfg map[string]dockerConfigEntry
		if err := json.Unmarshal(s.Data[corev1.DockerConfigKey], &cfg); err != nil {
			return nil, fmt.Errorf("%s is not a docker config: %v", corev1.DockerConfigKey, jsonProblem(err))
		}
		return cfg, nil
	}
	return nil, fmt.Errorf("type %q is not %s or %s", s.Type, corev1.SecretTypeDockerConfigJson, corev1.SecretTypeDockercfg)
}

// jsonProblem describes a decoding error without quoting the input, which
// holds credentials.
func jsonProblem(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("invalid JSON at offset %d", syntax.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %s: expected %s", typ.Field, typ.Type)
	}
	return "invalid JSON"
}

// registryAuth decodes the entry: "auth" is base64 of "user:password" and
// stands in for username and password when they are absent.
func (e dockerConfigEntry) registryAuth() (*runtimev1.RegistryAuth, error) {
	auth := &runtimev1.RegistryAuth{Username: e.Username, Password: e.Password, IdentityToken: e.IdentityToken}
	if e.Auth != "" && e.Username == "" && e.Password == "" {
		decoded, err := base64.StdEncoding.DecodeString(e.Auth)
		if err != nil {
			return nil, errors.New(`"auth" is not base64`)
		}
		user, password, ok := strings.Cut(string(decoded), ":")
		if !ok {
			return nil, errors.New(`"auth" is not base64 of user:password`)
		}
		auth.Username, auth.Password = user, password
	}
	if auth.Username == "" && auth.Password == "" && auth.IdentityToken == "" {
		return nil, errors.New("no username, password, auth or identitytoken")
	}
	return auth, nil
}

// registryOf splits an image reference into its registry host and
// repository path ("busybox" is on docker.io, path library/busybox).
func registryOf(image string) (host, path string, err error) {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return "", "", fmt.Errorf("image %q: %w", image, err)
	}
	return reference.Domain(named), reference.Path(named), nil
}

// dockerHubHosts are the names Docker Hub's registry goes by in docker
// configs.
var dockerHubHosts = map[string]bool{
	"docker.io": true, "index.docker.io": true, "registry-1.docker.io": true, "registry.hub.docker.com": true,
}

// matchKey says whether a docker config key ("host[:port][/path]", with or
// without http:// or https://) names the image's registry: the same host,
// and when the key has a path, the image's repository under it. It returns
// the key without its scheme.
func matchKey(key, host, path string) (string, bool) {
	k := strings.TrimPrefix(strings.TrimPrefix(key, "https://"), "http://")
	k = strings.TrimSuffix(k, "/")
	keyHost, keyPath, _ := strings.Cut(k, "/")
	if dockerHubHosts[keyHost] && dockerHubHosts[host] {
		// Docker's own config writes Hub's key as https://index.docker.io/v1/.
		if keyPath == "v1" || keyPath == "v2" {
			keyPath = ""
		}
	} else if !strings.EqualFold(keyHost, host) {
		return "", false
	}
	if keyPath != "" && path != keyPath && !strings.HasPrefix(path, keyPath+"/") {
		return "", false
	}
	return k, true
}
