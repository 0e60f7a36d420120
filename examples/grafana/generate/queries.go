package main

import (
	"fmt"
	"strings"
)

// The dashboard's variables, as they appear in the queries.
const (
	// nameMatch restricts a per-container metric to the selected names.
	nameMatch = `name=~"$name"`
	// selectedInfo is docker_container_info of the selected compose projects.
	// Its "All" value is ".*", so it also keeps containers without a project.
	selectedInfo = `docker_container_info{compose_project=~"$compose_project"}`
)

// joinLabels identify one container across several exporters scraped into
// one Prometheus: two hosts may well each have a container of the same name,
// and a join on name alone would then fail with "many-to-many matching".
const joinLabels = "job, instance, name"

// inSelectedProjects keeps the series of a per-container gauge whose
// container is in a selected compose project, and adds compose_project to
// them. vector must be a single term (a selector, a call or a parenthesised
// expression): * binds tighter than a comparison. The gauges and
// docker_container_info appear and vanish with the container, so the join
// at the same instant is exact.
func inSelectedProjects(vector string) string {
	return fmt.Sprintf("%s\n  * on (%s) group_left (compose_project)\n  %s", vector, joinLabels, selectedInfo)
}

// perProject sums a per-container gauge of the selected containers by
// compose project.
func perProject(vector string) string {
	return fmt.Sprintf("sum by (compose_project) (\n  %s\n)", strings.ReplaceAll(inSelectedProjects(vector), "\n", "\n  "))
}

// seenInSelectedProjects keeps the series of a per-name counter whose
// container was in a selected compose project at some time in window. The
// counters outlive a destroyed container (for --store.retention) while its
// docker_container_info vanishes at once: joined at the same instant, the
// death of a container removed right after it died (docker run --rm, compose
// down) would never show. `and` also tolerates two containers of one name in
// the window (a re-create), which a group_left join would reject.
func seenInSelectedProjects(vector, window string) string {
	return fmt.Sprintf("%s\nand on (%s)\n  last_over_time(%s[%s])", vector, joinLabels, selectedInfo, window)
}

// counterIncrease is the selected containers' increase of a per-name counter
// over window.
func counterIncrease(metric, window string) string {
	return seenInSelectedProjects(fmt.Sprintf("increase(%s{%s}[%s])", metric, nameMatch, window), window)
}

// code is a numeric code for a label value, so that a state timeline can
// show one row per container coloured by a one-hot metric's label.
type code struct {
	value int
	label string // the metric's label value, e.g. "running"
	color string
}

// containerStates are docker_container_state's states, in the README's order.
var containerStates = []code{
	{1, "created", "blue"},
	{2, "running", "green"},
	{3, "paused", "yellow"},
	{4, "restarting", "orange"},
	{5, "removing", "purple"},
	{6, "exited", "red"},
	{7, "dead", "dark-red"},
}

// healthStatuses are docker_container_health_status's statuses.
var healthStatuses = []code{
	{1, "starting", "blue"},
	{2, "healthy", "green"},
	{3, "unhealthy", "red"},
}

// oneHotCode turns a one-hot metric (one series per label value, 1 for the
// current one) into one series per container whose value is the code of
// its current label value.
func oneHotCode(metric, label string, codes []code) string {
	var b strings.Builder
	fmt.Fprintf(&b, "max by (%s) (\n", joinLabels)
	for i, c := range codes {
		op := "   "
		if i > 0 {
			op = "or "
		}
		fmt.Fprintf(&b, "    %s(%s{%s, %s=%q} == 1) * %d\n", op, metric, nameMatch, label, c.label, c.value)
	}
	b.WriteString(")")
	return b.String()
}

// countOneHot counts the selected containers whose one-hot metric is 1 for
// label=value.
func countOneHot(metric, label, value string) string {
	return fmt.Sprintf("count(\n  %s\n)", strings.ReplaceAll(
		inSelectedProjects(fmt.Sprintf("(%s{%s=%q, %s} == 1)", metric, label, value, nameMatch)), "\n", "\n  "))
}

// sumIncrease is the selected containers' total increase of a per-name
// counter over window.
func sumIncrease(metric, window string) string {
	return fmt.Sprintf("sum(\n  %s\n)", strings.ReplaceAll(counterIncrease(metric, window), "\n", "\n  "))
}
