module github.com/meshdrill/drill

go 1.26
