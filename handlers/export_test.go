package handlers

// StreamBody is streamBody, for the test of what a client sees of a body that fails
// half-way.
var StreamBody = streamBody
