
recordedé
5type.googleapis.com/envoy.config.listener.v3.Listener¯
0.0.0.0_15443
0.0.0.0Óxæ
}RistioRistio-peer-exchangeRistio-http/1.0Ristio-http/1.1Ristio-h2Z5outbound_.443_._.kubernetes.default.svc.cluster.localà
envoy.filters.network.tcp_proxy"¼
Jtype.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxyn
5outbound_.443_._.kubernetes.default.svc.cluster.local5outbound_.443_._.kubernetes.default.svc.cluster.localJà
{RistioRistio-peer-exchangeRistio-http/1.0Ristio-http/1.1Ristio-h2Z3outbound_.9080_._.details.default.svc.cluster.localÜ
envoy.filters.network.tcp_proxy"¸
Jtype.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxyj
3outbound_.9080_._.details.default.svc.cluster.local3outbound_.9080_._.details.default.svc.cluster.localJì
RistioRistio-peer-exchangeRistio-http/1.0Ristio-http/1.1Ristio-h2Z7outbound_.9080_._.productpage.default.svc.cluster.localä
envoy.filters.network.tcp_proxy"À
Jtype.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxyr
7outbound_.9080_._.productpage.default.svc.cluster.local7outbound_.9080_._.productpage.default.svc.cluster.localJà
{RistioRistio-peer-exchangeRistio-http/1.0Ristio-http/1.1Ristio-h2Z3outbound_.9080_._.ratings.default.svc.cluster.localÜ
envoy.filters.network.tcp_proxy"¸
Jtype.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxyj
3outbound_.9080_._.ratings.default.svc.cluster.local3outbound_.9080_._.ratings.default.svc.cluster.localJà
{RistioRistio-peer-exchangeRistio-http/1.0Ristio-http/1.1Ristio-h2Z3outbound_.9080_._.reviews.default.svc.cluster.localÜ
envoy.filters.network.tcp_proxy"¸
Jtype.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxyj
3outbound_.9080_._.reviews.default.svc.cluster.local3outbound_.9080_._.reviews.default.svc.cluster.localJJ„
$envoy.filters.listener.tls_inspector\
Stype.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector€€’"5type.googleapis.com/envoy.config.listener.v3.Listener*lds