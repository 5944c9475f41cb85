package main

// What Huawei's ascend-device-plugin writes through the API server, emulated:
//
//   - the node's device-info ConfigMap, kube-system/mindx-dl-deviceinfo-<node>,
//     key DeviceInfoCfg: the healthy and the unhealthy devices of the node,
//     which MindCluster's scheduler plugin, its Resilience Controller and
//     MindIE read to learn of NPU faults (and this project's operator too);
//   - the pod annotation huawei.com/AscendReal: the devices a pod was really
//     given, which those readers match against the faulty ones.
//
// Huawei's plugin learns a pod's devices from the kubelet's checkpoint; this
// one asks the kubelet's PodResources API, which serves the same allocation.
// Both are written with the node's kubeconfig credentials over plain HTTPS:
// two requests do not justify client-go and its dependency tree.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	podresources "k8s.io/kubelet/pkg/apis/podresources/v1"
)

const (
	deviceInfoPrefix  = "mindx-dl-deviceinfo-"
	deviceInfoKey     = "DeviceInfoCfg"
	annotationReal    = "huawei.com/AscendReal"
	republishInterval = 5 * time.Minute // Huawei's period when nothing changes
)

// deviceInfo is the JSON under DeviceInfoCfg, field for field as Huawei's
// plugin writes it (NodeDeviceInfoWithDevPlugin).
type deviceInfo struct {
	DeviceInfo struct {
		DeviceList map[string]string `json:"DeviceList"`
		UpdateTime int64             `json:"UpdateTime"`
	} `json:"DeviceInfo"`
	CheckCode string `json:"CheckCode"`
}

// deviceInfoConfigMap is the node's device-info ConfigMap. Pure.
func deviceInfoConfigMap(node, namespace, resource string, ids []string, unhealthy map[string]bool,
	now time.Time) (map[string]any, error) {
	var healthy, sick []string
	for _, id := range ids {
		if unhealthy[id] {
			sick = append(sick, id)
		} else {
			healthy = append(healthy, id)
		}
	}
	var info deviceInfo
	info.DeviceInfo.DeviceList = map[string]string{
		resource:                       strings.Join(healthy, ","),
		resource + "-Unhealthy":        strings.Join(sick, ","),
		resource + "-NetworkUnhealthy": "",
		resource + "-Fault":            "[]",
	}
	info.DeviceInfo.UpdateTime = now.Unix()
	// The check code is the SHA-256 of the DeviceInfo member's JSON, which
	// readers recompute to refuse a hand-edited or half-written value.
	inner, err := json.Marshal(info.DeviceInfo)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(inner)
	info.CheckCode = hex.EncodeToString(sum[:])
	data, err := json.Marshal(info)
	if err != nil {
		return nil, err
	}
	return map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": deviceInfoPrefix + node, "namespace": namespace},
		"data":     map[string]string{deviceInfoKey: string(data)},
	}, nil
}

type podKey struct{ namespace, name string }

// allocations maps each pod holding devices of `resource` to the devices'
// IDs, comma-joined in order: the value of its huawei.com/AscendReal. Pure.
func allocations(resp *podresources.ListPodResourcesResponse, resource string) map[podKey]string {
	out := map[podKey]string{}
	for _, pod := range resp.GetPodResources() {
		var ids []string
		for _, c := range pod.GetContainers() {
			for _, d := range c.GetDevices() {
				if d.GetResourceName() == resource {
					ids = append(ids, d.GetDeviceIds()...)
				}
			}
		}
		if len(ids) > 0 {
			sort.Strings(ids)
			out[podKey{pod.GetNamespace(), pod.GetName()}] = strings.Join(ids, ",")
		}
	}
	return out
}

// apiClient writes to the API server with client-certificate credentials.
type apiClient struct {
	server string
	http   *http.Client
}

func newAPIClient(server, caFile, certFile, keyFile string) (*apiClient, error) {
	ca, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("%s: no PEM certificate", caFile)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	transport := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}}
	return &apiClient{server: strings.TrimRight(server, "/"), http: &http.Client{Transport: transport, Timeout: 10 * time.Second}}, nil
}

func (a *apiClient) do(ctx context.Context, method, path, contentType string, body any) (int, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, method, a.server+path, bytes.NewReader(raw))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("User-Agent", "ascend-device-plugin (emulated)")
	resp, err := a.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
	if resp.StatusCode >= 300 && resp.StatusCode != http.StatusNotFound {
		return resp.StatusCode, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, strings.TrimSpace(string(text)))
	}
	return resp.StatusCode, nil
}

// putConfigMap replaces the ConfigMap, creating it when it does not exist.
func (a *apiClient) putConfigMap(ctx context.Context, cm map[string]any) error {
	meta := cm["metadata"].(map[string]any)
	collection := fmt.Sprintf("/api/v1/namespaces/%s/configmaps", meta["namespace"])
	code, err := a.do(ctx, http.MethodPut, collection+"/"+meta["name"].(string), "application/json", cm)
	if err != nil || code != http.StatusNotFound {
		return err
	}
	_, err = a.do(ctx, http.MethodPost, collection, "application/json", cm)
	return err
}

func (a *apiClient) annotatePod(ctx context.Context, key podKey, name, value string) error {
	patch := map[string]any{"metadata": map[string]any{"annotations": map[string]string{name: value}}}
	_, err := a.do(ctx, http.MethodPatch, fmt.Sprintf("/api/v1/namespaces/%s/pods/%s", key.namespace, key.name),
		"application/merge-patch+json", patch)
	return err
}

// report publishes the device-info ConfigMap at start, on every health change
// and every republishInterval, and annotates pods with their devices, until
// ctx ends. A failed write is retried at the next poll.
func (p *plugin) report(ctx context.Context, api *apiClient) {
	annotated := map[podKey]string{}
	published := time.Time{}
	var changed <-chan struct{}
	t := time.NewTicker(p.cfg.pollInterval)
	defer t.Stop()
	for {
		if changed == nil || time.Since(published) > republishInterval {
			unhealthy, now := p.health()
			cm, err := deviceInfoConfigMap(p.cfg.nodeName, p.cfg.deviceInfoNamespace, p.cfg.resourceName, p.ids,
				unhealthy, time.Now())
			if err == nil {
				err = api.putConfigMap(ctx, cm)
			}
			if err != nil {
				log.Printf("device info: %v (retrying)", err)
			} else {
				changed, published = now, time.Now()
				log.Printf("device info: published %s%s (%d unhealthy)", deviceInfoPrefix, p.cfg.nodeName, len(unhealthy))
			}
		}
		p.annotate(ctx, api, annotated)
		select {
		case <-ctx.Done():
			return
		case <-changed:
			changed = nil
		case <-t.C:
		}
	}
}

// health is the set of unhealthy devices and the channel closed at its next
// change, read together. setUnhealthy replaces the map, never changes it, so
// the caller may keep it.
func (p *plugin) health() (map[string]bool, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.unhealthy, p.changed
}

// annotate gives each pod holding devices its huawei.com/AscendReal, once
// per allocation (`done` remembers what was written).
func (p *plugin) annotate(ctx context.Context, api *apiClient, done map[podKey]string) {
	conn, err := grpc.NewClient("unix://"+p.cfg.podResourcesSocket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Printf("pod resources: %v", err)
		return
	}
	defer conn.Close()
	callCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := podresources.NewPodResourcesListerClient(conn).List(callCtx, &podresources.ListPodResourcesRequest{})
	if err != nil {
		if ctx.Err() == nil {
			log.Printf("pod resources: %v", err)
		}
		return
	}
	current := allocations(resp, p.cfg.resourceName)
	for key, value := range current {
		if done[key] == value {
			continue
		}
		if err := api.annotatePod(ctx, key, annotationReal, value); err != nil {
			log.Printf("annotate %s/%s: %v", key.namespace, key.name, err)
			continue
		}
		done[key] = value
		log.Printf("annotate %s/%s: %s=%s", key.namespace, key.name, annotationReal, value)
	}
	for key := range done {
		if _, ok := current[key]; !ok {
			delete(done, key)
		}
	}
}
