package report

import (
	"context"
	"flag"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

var screenshot = flag.String("screenshot", "", "keep the headless Chromium screenshot of the seed report.html at this path")

// browser finds a Chromium (Debian's chromium package, or a Chrome).
func browser() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// TestHTMLInChromium renders the seed drill's report.html in headless Chromium,
// with the network off, and checks that the page draws: the screenshot is not
// blank, and the charts' colours are on it. Run with -screenshot=out.png to look
// at it.
func TestHTMLInChromium(t *testing.T) {
	bin := browser()
	if bin == "" {
		t.Skip("no chromium on PATH: install Debian's chromium package (apt-get install chromium) to check report.html in a browser")
	}
	dir := t.TempDir()
	rep, err := Build(seedStory(t).build())
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "report.png")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		// No network at all: a page that needed to fetch anything would show it.
		"--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
		"--hide-scrollbars", "--user-data-dir="+filepath.Join(dir, "profile"),
		"--screenshot="+out, "--window-size=1280,3200", "file://"+filepath.Join(dir, HTMLFile))
	cmd.Dir = dir
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, msg)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatalf("chromium wrote no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if *screenshot != "" {
		data, _ := os.ReadFile(out)
		if err := os.WriteFile(*screenshot, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b := img.Bounds()
	if b.Dx() != 1280 || b.Dy() != 3200 {
		t.Errorf("screenshot is %dx%d, want 1280x3200", b.Dx(), b.Dy())
	}
	inked, colours := 0, map[color.RGBA]bool{}
	// The colours the charts must show: the verdict badge, ok traffic, cluster1
	// and cluster2, the failover marker.
	want := map[string]color.RGBA{
		"pass badge":         rgb(0x1b, 0x7f, 0x3b),
		"ok requests":        blend(rgb(0x4c, 0xaf, 0x50), 0.8),
		"cluster1 (local)":   blend(rgb(0x00, 0x72, 0xb2), 0.8),
		"cluster2 (.global)": blend(rgb(0xe6, 0x9f, 0x00), 0.8),
		"failover marker":    rgb(0x6a, 0x1b, 0x9a),
	}
	found := map[string]int{}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			c := color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(bl >> 8), 255}
			if c.R < 245 || c.G < 245 || c.B < 245 {
				inked++
			}
			if len(colours) < 10000 {
				colours[c] = true
			}
			for name, w := range want {
				if near(c, w, 10) {
					found[name]++
				}
			}
		}
	}
	t.Logf("colours found: %v", found)
	if share := float64(inked) / float64(b.Dx()*b.Dy()); share < 0.1 {
		t.Errorf("only %.1f%% of the screenshot is not white: the page did not draw", share*100)
	}
	if len(colours) < 50 {
		t.Errorf("the screenshot has %d colours: it looks blank", len(colours))
	}
	for name := range want {
		if found[name] < 20 {
			t.Errorf("the screenshot shows hardly any %s colour (%d pixels): a chart did not draw", name, found[name])
		}
	}
}

func rgb(r, g, b uint8) color.RGBA { return color.RGBA{r, g, b, 255} }

// blend is c drawn with opacity a over white.
func blend(c color.RGBA, a float64) color.RGBA {
	mix := func(v uint8) uint8 { return uint8(float64(v)*a + 255*(1-a) + 0.5) }
	return color.RGBA{mix(c.R), mix(c.G), mix(c.B), 255}
}

func near(a, b color.RGBA, d int) bool {
	abs := func(v int) int {
		if v < 0 {
			return -v
		}
		return v
	}
	return abs(int(a.R)-int(b.R)) <= d && abs(int(a.G)-int(b.G)) <= d && abs(int(a.B)-int(b.B)) <= d
}
