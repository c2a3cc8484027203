// Package docs holds no code: it is the home of Switchboard's documentation
// beyond the README (the public contract, operations, deployment,
// architecture, load testing, testing) and of the tests that keep it true:
// every link stays inside the repository and resolves, the settings tables
// list exactly the settings the node reads, the contract names every frame
// type, error code and metric the code has (and no other), and the README's
// test command is the one CI runs.
package docs
