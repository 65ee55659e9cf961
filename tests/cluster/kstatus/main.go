// Command kstatus prints the kstatus status of one Kubernetes object.
//
//	kstatus [-n NAMESPACE] [--kubeconfig FILE] RESOURCE/NAME
//
// RESOURCE is what kubectl accepts: a plural, singular or short name, with an
// optional group ("persistentchatpools.persistentchat.io") or group and
// version ("deployments.v1.apps"). The object is read with a dynamic client
// (credentials from --kubeconfig, else $KUBECONFIG, else ~/.kube/config) and
// its status computed with sigs.k8s.io/cli-utils/pkg/kstatus/status.
//
// Output: the status message on the lines before, and the status alone on the
// last line: Current, InProgress, Failed, Terminating, NotFound (or Unknown).
// Exit 0 whenever a status was computed (NotFound included); exit 1 with an
// error on stderr when it could not be (bad arguments, unknown resource type,
// an API error other than not-found); exit 2 on a usage error.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	flag "github.com/spf13/pflag"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

func main() {
	fs := flag.NewFlagSet("kstatus", flag.ContinueOnError)
	namespace := fs.StringP("namespace", "n", "", "namespace of the object (default: the kubeconfig context's, else \"default\"); ignored for cluster-scoped resources")
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)")
	timeout := fs.Duration("request-timeout", 30*time.Second, "timeout for the API requests")
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: kstatus [-n NAMESPACE] [--kubeconfig FILE] RESOURCE/NAME\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		os.Exit(2)
	}
	if fs.NArg() != 1 {
		fs.Usage()
		os.Exit(2)
	}
	st, msg, err := run(fs.Arg(0), *namespace, *kubeconfig, *timeout)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kstatus: %v\n", err)
		os.Exit(1)
	}
	if msg != "" {
		fmt.Println(msg)
	}
	fmt.Println(st)
}

func run(arg, namespace, kubeconfig string, timeout time.Duration) (status.Status, string, error) {
	resource, name, ok := strings.Cut(arg, "/")
	if !ok || resource == "" || name == "" || strings.Contains(name, "/") {
		return "", "", fmt.Errorf("argument %q is not RESOURCE/NAME", arg)
	}

	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{})
	cfg, err := cc.ClientConfig()
	if err != nil {
		return "", "", fmt.Errorf("loading kubeconfig: %w", err)
	}
	cfg.Timeout = timeout
	if namespace == "" {
		namespace, _, err = cc.Namespace()
		if err != nil {
			return "", "", fmt.Errorf("namespace from kubeconfig: %w", err)
		}
	}

	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return "", "", err
	}
	mapper := restmapper.NewShortcutExpander(
		restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc)), dc, nil)
	mapping, err := resolve(mapper, resource)
	if err != nil {
		return "", "", err
	}

	client, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return "", "", err
	}
	var ri dynamic.ResourceInterface = client.Resource(mapping.Resource)
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		ri = client.Resource(mapping.Resource).Namespace(namespace)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	obj, err := ri.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return status.NotFoundStatus, fmt.Sprintf("%s %q not found", mapping.Resource.GroupResource(), name), nil
	}
	if err != nil {
		return "", "", fmt.Errorf("get %s %q: %w", mapping.Resource.GroupResource(), name, err)
	}
	res, err := status.Compute(obj)
	if err != nil {
		return "", "", fmt.Errorf("computing status of %s %q: %w", mapping.Resource.GroupResource(), name, err)
	}
	return res.Status, res.Message, nil
}

// resolve maps a kubectl-style resource argument to a REST mapping, the way
// kubectl's resource builder does: "resource.version.group" is tried as a
// full GroupVersionResource first, then "resource.group" as a GroupResource.
func resolve(mapper meta.RESTMapper, arg string) (*meta.RESTMapping, error) {
	var gvr schema.GroupVersionResource
	fullySpecified, groupResource := schema.ParseResourceArg(strings.ToLower(arg))
	found := false
	if fullySpecified != nil {
		if r, err := mapper.ResourceFor(*fullySpecified); err == nil {
			gvr, found = r, true
		}
	}
	if !found {
		r, err := mapper.ResourceFor(groupResource.WithVersion(""))
		if err != nil {
			return nil, fmt.Errorf("resource type %q is not served by the API server: %w", arg, err)
		}
		gvr = r
	}
	gvk, err := mapper.KindFor(gvr)
	if err != nil {
		return nil, fmt.Errorf("kind of %s: %w", gvr, err)
	}
	mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, fmt.Errorf("mapping of %s: %w", gvk, err)
	}
	return mapping, nil
}
