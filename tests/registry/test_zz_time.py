import json, time
from registry._web import _fragments as f
def test_time(registry):
    token = registry.token()
    registry.publish(token)
    doc = registry.client.get("/api/v1/plugins/acme/hello/versions/1.0.0").text
    f.version_fragment(doc)
    t = time.perf_counter(); n = 300
    for _ in range(n): f.version_fragment(doc)
    v = (time.perf_counter() - t) / n
    rows = [(f"1.{i}.0", "active", "experimental", "2026-01-01T00:00:00Z", None, None, None, None) for i in range(10)]
    t = time.perf_counter()
    for _ in range(n): f.plugin_fragment(namespace="acme", name="hello", description="x", versions=rows)
    p = (time.perf_counter() - t) / n
    print(f"\nVERSION {v*1e6:.0f} us PLUGIN10 {p*1e6:.0f} us len {len(f.version_fragment(doc))}")
