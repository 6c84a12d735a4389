package app

import "html/template"

// productPage is what the product page shows.
type productPage struct {
	Product      Product
	User         string
	DetailsOK    bool
	Details      BookDetails
	DetailsError string
	ReviewsOK    bool
	Reviews      ReviewsAnswer
	ReviewsError string
}

// stars lays out a rating as upstream's page does: n full stars, then empty
// ones up to five; nothing for no stars (upstream tests the count's truth).
func stars(n *int) []bool {
	if n == nil || *n <= 0 {
		return nil
	}
	out := make([]bool, 5)
	for i := range out {
		out[i] = i < *n
	}
	return out
}

var funcs = template.FuncMap{
	"stars": stars,
	"html":  func(s string) template.HTML { return template.HTML(s) }, //nolint:gosec // the product description is drill's own constant
}

// pageTemplate is drill's rendering of the product page: the same content and
// messages as upstream's productpage.html (title, summary, details, reviews
// with stars, who served the reviews), in plain HTML.
var pageTemplate = template.Must(template.New("productpage").Funcs(funcs).Parse(`<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<title>Simple Bookstore App</title>
</head>
<body>
<nav>
<a href="#">BookInfo Sample</a>
{{if .User}}<span class="user">{{.User}} ( <a href="logout">sign out</a> )</span>
{{else}}<form method="post" action="login" name="login_form"><input type="text" name="username" placeholder="User Name"><input type="password" name="passwd" placeholder="Password"><button type="submit">Sign in</button></form>
{{end}}</nav>
<main>
<h3>{{.Product.Title}}</h3>
<p>Summary: {{html .Product.DescriptionHTML}}</p>
<section id="details">
{{if .DetailsOK}}<h4>Book Details</h4>
<dl>
<dt>Type:</dt><dd>{{.Details.Type}}</dd>
<dt>Pages:</dt><dd>{{.Details.Pages}}</dd>
<dt>Publisher:</dt><dd>{{.Details.Publisher}}</dd>
<dt>Language:</dt><dd>{{.Details.Language}}</dd>
<dt>ISBN-10:</dt><dd>{{.Details.ISBN10}}</dd>
<dt>ISBN-13:</dt><dd>{{.Details.ISBN13}}</dd>
</dl>
{{else}}<h4>Error fetching product details!</h4>
<p>{{.DetailsError}}</p>
{{end}}</section>
<section id="reviews">
{{if .ReviewsOK}}<h4>Book Reviews</h4>
{{range .Reviews.Reviews}}<blockquote>
<p>{{.Text}}</p>
<small>{{.Reviewer}}</small>
{{with .Rating}}{{$r := .}}{{with stars .Stars}}<font color="{{$r.Color}}">{{range .}}{{if .}}<span class="glyphicon glyphicon-star"></span>{{else}}<span class="glyphicon glyphicon-star-empty"></span>{{end}}{{end}}</font>
{{else}}{{with $r.Error}}<p><i>{{.}}</i></p>
{{end}}{{end}}{{end}}</blockquote>
{{end}}<p>Reviews served by: <u>{{.Reviews.PodName}}</u>{{if .Reviews.ClusterName}} on cluster <u>{{.Reviews.ClusterName}}</u>{{end}}</p>
{{else}}<h4>Error fetching product reviews!</h4>
<p>{{.ReviewsError}}</p>
{{end}}</section>
</main>
</body>
</html>
`))

var indexTemplate = template.Must(template.New("index").Parse(`<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>Simple Bookstore App</title></head>
<body>
<h3>Hello! This is a simple bookstore application consisting of three services as shown below</h3>
<table>
<tr><th>name</th><th>endpoint</th></tr>
{{range .}}<tr><td>{{.Name}}</td><td>{{.URL}}</td></tr>
{{end}}</table>
<p>Click on one of the links below to auto generate a request to the backend as a real user or a tester</p>
<p><a href="productpage?u=normal">Normal user</a></p>
<p><a href="productpage?u=test">Test user</a></p>
</body>
</html>
`))
