package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	podresources "k8s.io/kubelet/pkg/apis/podresources/v1"
)

func TestDeviceInfoConfigMapListsHealthyAndUnhealthyDevicesWithAValidCheckCode(t *testing.T) {
	ids := []string{"Ascend910-0", "Ascend910-1", "Ascend910-2"}
	cm, err := deviceInfoConfigMap("node-a", "kube-system", "huawei.com/Ascend910", ids,
		map[string]bool{"Ascend910-1": true}, time.Unix(1718702470, 0))
	if err != nil {
		t.Fatal(err)
	}
	meta := cm["metadata"].(map[string]any)
	if meta["name"] != "mindx-dl-deviceinfo-node-a" || meta["namespace"] != "kube-system" {
		t.Fatalf("metadata %v", meta)
	}
	raw := cm["data"].(map[string]string)["DeviceInfoCfg"]
	var info struct {
		DeviceInfo json.RawMessage `json:"DeviceInfo"`
		CheckCode  string          `json:"CheckCode"`
	}
	if err := json.Unmarshal([]byte(raw), &info); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(info.DeviceInfo)
	if info.CheckCode != hex.EncodeToString(sum[:]) {
		t.Fatalf("check code %s is not the SHA-256 of %s", info.CheckCode, info.DeviceInfo)
	}
	var inner struct {
		DeviceList map[string]string
		UpdateTime int64
	}
	if err := json.Unmarshal(info.DeviceInfo, &inner); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"huawei.com/Ascend910":                  "Ascend910-0,Ascend910-2",
		"huawei.com/Ascend910-Unhealthy":        "Ascend910-1",
		"huawei.com/Ascend910-NetworkUnhealthy": "",
		"huawei.com/Ascend910-Fault":            "[]",
	}
	for k, v := range want {
		if inner.DeviceList[k] != v {
			t.Errorf("DeviceList[%q] = %q, want %q", k, inner.DeviceList[k], v)
		}
	}
	if len(inner.DeviceList) != len(want) || inner.UpdateTime != 1718702470 {
		t.Errorf("DeviceList %v, UpdateTime %d", inner.DeviceList, inner.UpdateTime)
	}
}

func TestAllocationsJoinEachPodsDevicesOfTheResourceOnly(t *testing.T) {
	resp := &podresources.ListPodResourcesResponse{PodResources: []*podresources.PodResources{
		{Name: "train-0", Namespace: "ml", Containers: []*podresources.ContainerResources{
			{Name: "stage", Devices: []*podresources.ContainerDevices{
				{ResourceName: "huawei.com/Ascend910", DeviceIds: []string{"Ascend910-5", "Ascend910-4"}},
				{ResourceName: "example.com/other", DeviceIds: []string{"x"}},
			}},
			{Name: "sidecar", Devices: []*podresources.ContainerDevices{
				{ResourceName: "huawei.com/Ascend910", DeviceIds: []string{"Ascend910-6"}},
			}},
		}},
		{Name: "web", Namespace: "ml", Containers: []*podresources.ContainerResources{{Name: "c"}}},
	}}
	got := allocations(resp, "huawei.com/Ascend910")
	if len(got) != 1 || got[podKey{"ml", "train-0"}] != "Ascend910-4,Ascend910-5,Ascend910-6" {
		t.Fatalf("allocations = %v", got)
	}
}

type recorded struct{ method, path, contentType, body string }

func fakeAPIServer(t *testing.T, status func(method string) int) (*apiClient, *[]recorded) {
	var mu sync.Mutex
	var calls []recorded
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		calls = append(calls, recorded{r.Method, r.URL.Path, r.Header.Get("Content-Type"), string(body)})
		mu.Unlock()
		w.WriteHeader(status(r.Method))
		_, _ = w.Write([]byte("{}"))
	}))
	t.Cleanup(srv.Close)
	return &apiClient{server: srv.URL, http: srv.Client()}, &calls
}

func TestPutConfigMapCreatesItWhenTheReplaceFindsNone(t *testing.T) {
	api, calls := fakeAPIServer(t, func(method string) int {
		if method == http.MethodPut {
			return http.StatusNotFound
		}
		return http.StatusCreated
	})
	cm, _ := deviceInfoConfigMap("n", "kube-system", "huawei.com/Ascend910", []string{"Ascend910-0"}, nil, time.Now())
	if err := api.putConfigMap(context.Background(), cm); err != nil {
		t.Fatal(err)
	}
	got := *calls
	if len(got) != 2 || got[0].method != "PUT" || got[0].path != "/api/v1/namespaces/kube-system/configmaps/mindx-dl-deviceinfo-n" ||
		got[1].method != "POST" || got[1].path != "/api/v1/namespaces/kube-system/configmaps" {
		t.Fatalf("calls %+v", got)
	}
}

func TestPutConfigMapReportsARefusal(t *testing.T) {
	api, _ := fakeAPIServer(t, func(string) int { return http.StatusForbidden })
	cm, _ := deviceInfoConfigMap("n", "kube-system", "huawei.com/Ascend910", []string{"Ascend910-0"}, nil, time.Now())
	if err := api.putConfigMap(context.Background(), cm); err == nil {
		t.Fatal("a 403 was taken for success")
	}
}

func TestAnnotatePodSendsAMergePatchOfTheAnnotation(t *testing.T) {
	api, calls := fakeAPIServer(t, func(string) int { return http.StatusOK })
	if err := api.annotatePod(context.Background(), podKey{"ml", "train-0"}, annotationReal, "Ascend910-4"); err != nil {
		t.Fatal(err)
	}
	got := (*calls)[0]
	if got.method != "PATCH" || got.path != "/api/v1/namespaces/ml/pods/train-0" ||
		got.contentType != "application/merge-patch+json" ||
		got.body != `{"metadata":{"annotations":{"huawei.com/AscendReal":"Ascend910-4"}}}` {
		t.Fatalf("call %+v", got)
	}
}
