package translate

import (
	"fmt"

	"github.com/meshdrill/drill/pkg/scenario"
)

// bookinfoVersions returns the versions of a Bookinfo service that run in a
// cluster, and whether name is a Bookinfo service at all.
func bookinfoVersions(b *scenario.Bookinfo, name string) ([]string, bool) {
	switch name {
	case "productpage":
		return b.Productpage, true
	case "details":
		return b.Details, true
	case "reviews":
		return b.Reviews, true
	case "ratings":
		return b.Ratings, true
	}
	return nil, false
}

// runs says whether drill knows svc to run in cluster: known is false when drill
// does not install Bookinfo there (bookinfo.install: false) or svc is not a
// Bookinfo service in the scenario's namespace, and then the user is trusted.
func (t *translator) runs(svc svcKey, cluster string) (runs, known bool) {
	c := t.clusters[cluster]
	if c == nil || c.Bookinfo == nil || c.Bookinfo.Install == nil || !*c.Bookinfo.Install {
		return false, false
	}
	versions, ok := bookinfoVersions(c.Bookinfo, svc.name)
	if !ok || svc.namespace != t.s.Spec.Namespace {
		return false, false
	}
	return len(versions) > 0, true
}

// checkRuns reports a backing service (at field bf) placed in a cluster that does
// not run it.
func (t *translator) checkRuns(svc svcKey, cluster, bf string) {
	if _, ok := t.clusters[cluster]; !ok {
		return // the scenario validator reported it
	}
	runs, known := t.runs(svc, cluster)
	switch {
	case known && !runs:
		vf := fmt.Sprintf("spec.clusters[%d].bookinfo.%s", t.clusterI[cluster], svc.name)
		line, _ := t.s.Pos(vf)
		t.errf(bf+".cluster", "%s does not run in %s: %s is empty (line %d); give it a version there, or back the failover service with a cluster that runs %s",
			svc.name, cluster, vf, line, svc.name)
	case !known && t.installs(cluster) && t.once("unknown|"+svc.String()+"|"+cluster):
		t.warnf(bf+".service", "%s is not a Bookinfo service in namespace %s, so drill does not install it in %s; make sure it runs there",
			svc, t.s.Spec.Namespace, cluster)
	}
}

// installs reports whether drill installs Bookinfo in cluster.
func (t *translator) installs(cluster string) bool {
	c := t.clusters[cluster]
	return c != nil && c.Bookinfo != nil && c.Bookinfo.Install != nil && *c.Bookinfo.Install
}
