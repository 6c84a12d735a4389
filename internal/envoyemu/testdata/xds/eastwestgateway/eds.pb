
recorded}
Btype.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment7
5outbound_.443_._.kubernetes.default.svc.cluster.localÖ
Btype.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment
3outbound_.9080_._.details.default.svc.cluster.localª


cluster1—w
4
envoy.transport_socket_match

tlsModeistio
?
istio6
4
workload(&details-v1;default;details;v1;cluster1"


10.10.212.207øFª


cluster2—w
4
envoy.transport_socket_match

tlsModeistio
?
istio6
4
workload(&details-v1;default;details;v1;cluster2"


10.11.197.210øFê
Btype.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment£
7outbound_.9080_._.productpage.default.svc.cluster.local²


cluster1Ÿ
4
envoy.transport_socket_match

tlsModeistio
G
istio>
<
workload0.productpage-v1;default;productpage;v1;cluster1"


10.10.212.210øF²


cluster2Ÿ
4
envoy.transport_socket_match

tlsModeistio
G
istio>
<
workload0.productpage-v1;default;productpage;v1;cluster2"


10.11.197.213øFÖ
Btype.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment
3outbound_.9080_._.ratings.default.svc.cluster.localª


cluster1—w
4
envoy.transport_socket_match

tlsModeistio
?
istio6
4
workload(&ratings-v1;default;ratings;v1;cluster1"


10.10.212.208øFª


cluster2—w
4
envoy.transport_socket_match

tlsModeistio
?
istio6
4
workload(&ratings-v1;default;ratings;v1;cluster2"


10.11.197.211øFð
Btype.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment©
3outbound_.9080_._.reviews.default.svc.cluster.localÄ


cluster1—w
4
envoy.transport_socket_match

tlsModeistio
?
istio6
4
workload(&reviews-v1;default;reviews;v1;cluster1"


10.10.212.209øF—w
4
envoy.transport_socket_match

tlsModeistio
?
istio6
4
workload(&reviews-v2;default;reviews;v2;cluster1"


10.10.212.211øFª


cluster2—w
4
envoy.transport_socket_match

tlsModeistio
?
istio6
4
workload(&reviews-v3;default;reviews;v3;cluster2"


10.11.197.212øFz
Btype.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment4
2outbound|443||kubernetes.default.svc.cluster.localÓ
Btype.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignmentŒ
0outbound|9080||details.default.svc.cluster.localª


cluster1—w
4
envoy.transport_socket_match

tlsModeistio
?
istio6
4
workload(&details-v1;default;details;v1;cluster1"


10.10.212.207øFª


cluster2—w
4
envoy.transport_socket_match

tlsModeistio
?
istio6
4
workload(&details-v1;default;details;v1;cluster2"


10.11.197.210øFç
Btype.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment 
4outbound|9080||productpage.default.svc.cluster.local²


cluster1Ÿ
4
envoy.transport_socket_match

tlsModeistio
G
istio>
<
workload0.productpage-v1;default;productpage;v1;cluster1"


10.10.212.210øF²


cluster2Ÿ
4
envoy.transport_socket_match

tlsModeistio
G
istio>
<
workload0.productpage-v1;default;productpage;v1;cluster2"


10.11.197.213øFÓ
Btype.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignmentŒ
0outbound|9080||ratings.default.svc.cluster.localª


cluster1—w
4
envoy.transport_socket_match

tlsModeistio
?
istio6
4
workload(&ratings-v1;default;ratings;v1;cluster1"


10.10.212.208øFª


cluster2—w
4
envoy.transport_socket_match

tlsModeistio
?
istio6
4
workload(&ratings-v1;default;ratings;v1;cluster2"


10.11.197.211øFí
Btype.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment¦
0outbound|9080||reviews.default.svc.cluster.localÄ


cluster1—w
4
envoy.transport_socket_match

tlsModeistio
?
istio6
4
workload(&reviews-v1;default;reviews;v1;cluster1"


10.10.212.209øF—w
4
envoy.transport_socket_match

tlsModeistio
?
istio6
4
workload(&reviews-v2;default;reviews;v2;cluster1"


10.10.212.211øFª


cluster2—w
4
envoy.transport_socket_match

tlsModeistio
?
istio6
4
workload(&reviews-v3;default;reviews;v3;cluster2"


10.11.197.212øF"Btype.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment*eds