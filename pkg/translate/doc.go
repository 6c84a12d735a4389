// Package translate turns a scenario's failover policy into the Istio objects each
// cluster needs.
//
// The policy is written in the style of Service Mesh Hub: TrafficPolicies (outlier
// detection, a traffic shift to a failover service, retries, a timeout) and
// FailoverServices (a hostname backed, in priority order, by a service in several
// clusters). Two strategies turn it into Istio configuration:
//
//   - aggregate, Service Mesh Hub's design: per failover service a ServiceEntry for
//     its hostname and an EnvoyFilter that makes the hostname's Envoy cluster an
//     aggregate cluster of the backing services, ServiceEntries that reach the
//     remote backing services through their cluster's gateway, DestinationRules with
//     outlier detection, and VirtualServices that shift the service's traffic to
//     the hostname.
//   - locality, Istio-native: per service one DestinationRule with outlier
//     detection and localityLbSetting, for meshes whose clusters share endpoints.
//
// Translate is a pure function of the scenario and of where the clusters reach each
// other (Input.Remotes): no cluster access, the same bytes for the same input,
// stable object names, and labels (Selector) by which the engine finds and removes
// exactly what it applied. Its output holds istio.io/client-go objects; Map,
// ToUnstructured and WriteYAML render them for server-side apply and kubectl.
// docs/translate.md explains each object and the facts behind it.
package translate
