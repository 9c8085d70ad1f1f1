module github.com/podsandbox/podsandbox

go 1.26.0
