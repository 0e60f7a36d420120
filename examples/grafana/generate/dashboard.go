package main

import (
	"strconv"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/statetimeline"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

const (
	dashboardUID   = "docker-exporter"
	dashboardTitle = "Docker containers"
)

// datasource is the dashboard's Prometheus, chosen by the datasource variable.
var datasource = dashboard.DataSourceRef{
	Type: cog.ToPtr("prometheus"),
	Uid:  cog.ToPtr("${datasource}"),
}

// buildDashboard assembles the dashboard. Panel ids are assigned in order,
// so the output is the same on every run.
func buildDashboard() (dashboard.Dashboard, error) {
	ids := &panelIDs{}
	b := dashboard.NewDashboardBuilder(dashboardTitle).
		Uid(dashboardUID).
		Description("Container state from docker_exporter: states, health, restarts, deaths, OOM kills and Docker events.").
		Tags([]string{"docker", "docker_exporter", "prometheus"}).
		Editable().
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Time("now-1h", "now").
		Refresh("30s").
		WithVariable(dashboard.NewDatasourceVariableBuilder("datasource").
			Label("Data source").
			Type("prometheus")).
		WithVariable(queryVariable("compose_project", "Compose project",
			"label_values(docker_container_info, compose_project)")).
		WithVariable(queryVariable("name", "Container",
			`label_values(docker_container_info{compose_project=~"$compose_project"}, name)`))

	b.WithRow(dashboard.NewRowBuilder("Overview").Id(ids.next()))
	b.WithPanel(containersByState(ids.next()))
	b.WithPanel(countStat(ids.next(), "Running",
		"Selected containers that are running.",
		countOneHot("docker_container_state", "state", "running"), "green"))
	b.WithPanel(countStat(ids.next(), "Exited",
		"Selected containers that have exited (and not been removed).",
		countOneHot("docker_container_state", "state", "exited"), "orange"))
	b.WithPanel(countStat(ids.next(), "Unhealthy",
		"Selected containers whose health check fails.",
		countOneHot("docker_container_health_status", "status", "unhealthy"), "red"))
	b.WithPanel(daemonConnected(ids.next()))
	b.WithPanel(countStat(ids.next(), "Restarts in range",
		"Restarts by restart policy of the selected containers in the dashboard's time range.",
		sumIncrease("docker_container_restarts_total", "$__range"), "orange").Span(8))
	b.WithPanel(countStat(ids.next(), "Deaths in range",
		"Deaths (die events, and deaths found when resyncing) of the selected containers in the dashboard's time range.",
		sumIncrease("docker_container_deaths_total", "$__range"), "orange").Span(8))
	b.WithPanel(countStat(ids.next(), "OOM kills in range",
		"OOM events of the selected containers in the dashboard's time range.",
		sumIncrease("docker_container_oom_events_total", "$__range"), "red").Span(8))

	b.WithRow(dashboard.NewRowBuilder("Containers").Id(ids.next()))
	b.WithPanel(stateTimeline(ids.next()))
	b.WithPanel(healthTimeline(ids.next()))
	b.WithPanel(failingStreak(ids.next()))

	b.WithRow(dashboard.NewRowBuilder("Restarts, deaths and OOM kills").Id(ids.next()))
	b.WithPanel(restarts(ids.next()))
	b.WithPanel(deathsAndOOMs(ids.next()))

	b.WithRow(dashboard.NewRowBuilder("Resource usage").Id(ids.next()))
	b.WithPanel(usageOverTime(ids.next(), "CPU per container",
		"CPU cores used by each selected container (rate of docker_container_cpu_usage_seconds_total, from the kernel's cgroup files).",
		"short", inSelectedProjects(`rate(docker_container_cpu_usage_seconds_total{`+nameMatch+`}[$__rate_interval])`), "{{name}}"))
	b.WithPanel(usageOverTime(ids.next(), "Memory per container",
		"Working set of each selected container: memory usage less inactive file cache, what the OOM killer looks at.",
		"bytes", inSelectedProjects(`docker_container_memory_working_set_bytes{`+nameMatch+`}`), "{{name}}"))
	b.WithPanel(usageOverTime(ids.next(), "CPU per compose project",
		"CPU cores used by the selected containers, summed per compose project.",
		"short", perProject(`rate(docker_container_cpu_usage_seconds_total{`+nameMatch+`}[$__rate_interval])`), "{{compose_project}}"))
	b.WithPanel(usageOverTime(ids.next(), "Memory per compose project",
		"Working set of the selected containers, summed per compose project.",
		"bytes", perProject(`docker_container_memory_working_set_bytes{`+nameMatch+`}`), "{{compose_project}}"))

	b.WithRow(dashboard.NewRowBuilder("Docker events").Id(ids.next()))
	b.WithPanel(eventRate(ids.next()))

	// Collapsed: its panels are nested in the row and load when it is opened.
	// The overview's "Daemon connected" shows the one that matters at a glance.
	b.WithRow(dashboard.NewRowBuilder("Exporter and daemon").Id(ids.next()).
		Collapsed(true).
		WithPanel(connectionTimeline(ids.next())).
		WithPanel(lastEventAge(ids.next())).
		WithPanel(reconnects(ids.next())).
		WithPanel(resyncs(ids.next())).
		WithPanel(daemonInfo(ids.next())))

	return b.Build()
}

type panelIDs struct{ last uint32 }

func (p *panelIDs) next() uint32 {
	p.last++
	return p.last
}

// queryVariable is a multi-value variable over a label of
// docker_container_info. "All" is ".*" rather than the list of values, so
// that it also matches containers without the label (no compose project)
// and keeps the queries short with many containers.
func queryVariable(name, label, query string) *dashboard.QueryVariableBuilder {
	return dashboard.NewQueryVariableBuilder(name).
		Label(label).
		Datasource(datasource).
		Query(dashboard.StringOrMap{String: cog.ToPtr(query)}).
		Definition(query).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Sort(dashboard.VariableSortAlphabeticalAsc).
		Multi(true).
		IncludeAll(true).
		AllValue(".*").
		Current(dashboard.VariableOption{
			Selected: cog.ToPtr(true),
			Text:     dashboard.StringOrArrayOfString{ArrayOfString: []string{"All"}},
			Value:    dashboard.StringOrArrayOfString{ArrayOfString: []string{"$__all"}},
		})
}

// query is a Prometheus query of the dashboard's data source.
func query(refID, expr, legend string) *prometheus.DataqueryBuilder {
	q := prometheus.NewDataqueryBuilder().
		Datasource(datasource).
		RefId(refID).
		Expr(expr)
	if legend != "" {
		q.LegendFormat(legend)
	}
	return q
}

func thresholds(steps ...dashboard.Threshold) *dashboard.ThresholdsConfigBuilder {
	return dashboard.NewThresholdsConfigBuilder().
		Mode(dashboard.ThresholdsModeAbsolute).
		Steps(steps)
}

// base is the colour below the first threshold.
func base(color string) dashboard.Threshold { return dashboard.Threshold{Color: color} }

func above(v float64, color string) dashboard.Threshold {
	return dashboard.Threshold{Value: &v, Color: color}
}

// valueMappings maps codes (see oneHotCode) to their label and colour.
func valueMappings(codes []code) []dashboard.ValueMapping {
	opts := make(map[string]dashboard.ValueMappingResult, len(codes))
	for i, c := range codes {
		opts[strconv.Itoa(c.value)] = dashboard.ValueMappingResult{
			Text:  cog.ToPtr(c.label),
			Color: cog.ToPtr(c.color),
			Index: cog.ToPtr(int32(i)),
		}
	}
	return []dashboard.ValueMapping{{ValueMap: &dashboard.ValueMap{
		Type:    dashboard.MappingTypeValueToText,
		Options: opts,
	}}}
}

func lastValue() *common.ReduceDataOptionsBuilder {
	return common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}).Values(false)
}

func legendList() *common.VizLegendOptionsBuilder {
	return common.NewVizLegendOptionsBuilder().
		DisplayMode(common.LegendDisplayModeList).
		Placement(common.LegendPlacementBottom).
		ShowLegend(true)
}

func tooltipAll() *common.VizTooltipOptionsBuilder {
	return common.NewVizTooltipOptionsBuilder().
		Mode(common.TooltipDisplayModeMulti).
		Sort(common.SortOrderDescending)
}

func containersByState(id uint32) *stat.PanelBuilder {
	return stat.NewPanelBuilder().
		Id(id).
		Title("Containers by state").
		Description("All containers of the daemon(s), per state, whatever the selection: docker_containers has no container labels.").
		Datasource(datasource).
		WithTarget(query("A", "sum by (state) (docker_containers)", "{{state}}").Instant()).
		Span(12).Height(4).
		ReduceOptions(lastValue()).
		TextMode(common.BigValueTextModeValueAndName).
		ColorMode(common.BigValueColorModeNone).
		GraphMode(common.BigValueGraphModeNone).
		Orientation(common.VizOrientationAuto).
		Decimals(0)
}

// countStat is a stat of a count that is "No data" when zero: the query
// returns nothing then, and the panel shows 0.
func countStat(id uint32, title, description, expr, color string) *stat.PanelBuilder {
	return stat.NewPanelBuilder().
		Id(id).
		Title(title).
		Description(description).
		Datasource(datasource).
		WithTarget(query("A", expr, title).Instant()).
		Span(3).Height(4).
		ReduceOptions(lastValue()).
		TextMode(common.BigValueTextModeValue).
		ColorMode(common.BigValueColorModeValue).
		GraphMode(common.BigValueGraphModeNone).
		Orientation(common.VizOrientationAuto).
		Decimals(0).
		NoValue("0").
		Thresholds(thresholds(base("green"), above(1, color)))
}

func daemonConnected(id uint32) *stat.PanelBuilder {
	return stat.NewPanelBuilder().
		Id(id).
		Title("Daemon connected").
		Description("docker_up: 1 while the exporter's event stream from the daemon is connected and its last sync succeeded. While 0, the other panels show the last state the exporter saw.").
		Datasource(datasource).
		WithTarget(query("A", "docker_up", "{{instance}}").Instant()).
		Span(3).Height(4).
		ReduceOptions(lastValue()).
		TextMode(common.BigValueTextModeValue).
		ColorMode(common.BigValueColorModeBackground).
		GraphMode(common.BigValueGraphModeNone).
		Orientation(common.VizOrientationAuto).
		Mappings(valueMappings([]code{{0, "down", "red"}, {1, "up", "green"}})).
		Thresholds(thresholds(base("red"), above(1, "green")))
}

func stateTimeline(id uint32) *statetimeline.PanelBuilder {
	return statetimeline.NewPanelBuilder().
		Id(id).
		Title("State").
		Description("Each selected container's state over time.").
		Datasource(datasource).
		WithTarget(query("A",
			inSelectedProjects(oneHotCode("docker_container_state", "state", containerStates)),
			"{{name}}")).
		Span(24).Height(10).
		Mappings(valueMappings(containerStates)).
		ShowValue(common.VisibilityModeNever).
		MergeValues(true).
		RowHeight(0.8).
		Legend(legendList()).
		Tooltip(tooltipAll())
}

func healthTimeline(id uint32) *statetimeline.PanelBuilder {
	return statetimeline.NewPanelBuilder().
		Id(id).
		Title("Health").
		Description("Health check status over time, for the selected containers that have a health check.").
		Datasource(datasource).
		WithTarget(query("A",
			inSelectedProjects(oneHotCode("docker_container_health_status", "status", healthStatuses)),
			"{{name}}")).
		Span(12).Height(8).
		Mappings(valueMappings(healthStatuses)).
		ShowValue(common.VisibilityModeNever).
		MergeValues(true).
		RowHeight(0.8).
		Legend(legendList()).
		Tooltip(tooltipAll())
}

func failingStreak(id uint32) *timeseries.PanelBuilder {
	return timeseries.NewPanelBuilder().
		Id(id).
		Title("Health check failing streak").
		Description("Consecutive failed health checks of the selected containers; the container turns unhealthy when the streak reaches its health check's retries.").
		Datasource(datasource).
		WithTarget(query("A",
			inSelectedProjects(`docker_container_health_failing_streak{`+nameMatch+`}`),
			"{{name}}")).
		Span(12).Height(8).
		Unit("short").
		Decimals(0).
		Min(0).
		LineInterpolation(common.LineInterpolationStepAfter).
		Thresholds(thresholds(base("green"), above(1, "red"))).
		Legend(legendList()).
		Tooltip(tooltipAll())
}

// usageOverTime is a line chart of resource usage.
func usageOverTime(id uint32, title, description, unit, expr, legend string) *timeseries.PanelBuilder {
	return timeseries.NewPanelBuilder().
		Id(id).
		Title(title).
		Description(description).
		Datasource(datasource).
		WithTarget(query("A", expr, legend)).
		Span(12).Height(8).
		Unit(unit).
		Min(0).
		Legend(legendList()).
		Tooltip(tooltipAll())
}

// countsOverTime is a bar chart of increases of per-name counters.
func countsOverTime(id uint32, title, description string, targets ...cog.Builder[variants.Dataquery]) *timeseries.PanelBuilder {
	p := timeseries.NewPanelBuilder().
		Id(id).
		Title(title).
		Description(description).
		Datasource(datasource).
		Span(12).Height(8).
		Unit("short").
		Min(0).
		DrawStyle(common.GraphDrawStyleBars).
		FillOpacity(60).
		Stacking(common.NewStackingConfigBuilder().Mode(common.StackingModeNormal)).
		Legend(legendList()).
		Tooltip(tooltipAll())
	for _, t := range targets {
		p.WithTarget(t)
	}
	return p
}

func restarts(id uint32) *timeseries.PanelBuilder {
	return countsOverTime(id, "Restarts",
		"Restarts by restart policy of the selected containers (increase of docker_container_restarts_total over each interval).",
		query("A", counterIncrease("docker_container_restarts_total", "$__rate_interval"), "{{name}}"))
}

func deathsAndOOMs(id uint32) *timeseries.PanelBuilder {
	return countsOverTime(id, "Deaths and OOM kills",
		"Deaths and OOM events of the selected containers over each interval. A container that dies and is restarted between two scrapes still counts.",
		query("A", counterIncrease("docker_container_deaths_total", "$__rate_interval"), "{{name}} died"),
		query("B", counterIncrease("docker_container_oom_events_total", "$__rate_interval"), "{{name}} OOM-killed"))
}

func eventRate(id uint32) *timeseries.PanelBuilder {
	return timeseries.NewPanelBuilder().
		Id(id).
		Title("Events by action").
		Description("Docker events per second the exporter received, by type and action, for the whole daemon(s) whatever the selection.").
		Datasource(datasource).
		WithTarget(query("A",
			"sum by (type, action) (rate(docker_events_total[$__rate_interval]))",
			"{{type}} {{action}}")).
		Span(24).Height(8).
		Unit("short").
		AxisLabel("events/s").
		Min(0).
		Legend(legendList()).
		Tooltip(tooltipAll())
}

func connectionTimeline(id uint32) *statetimeline.PanelBuilder {
	return statetimeline.NewPanelBuilder().
		Id(id).
		Title("Daemon connection").
		Description("docker_up over time, per exporter.").
		Datasource(datasource).
		WithTarget(query("A", "docker_up", "{{instance}}")).
		Span(12).Height(6).
		Mappings(valueMappings([]code{{0, "down", "red"}, {1, "up", "green"}})).
		ShowValue(common.VisibilityModeNever).
		MergeValues(true).
		Legend(legendList()).
		Tooltip(tooltipAll())
}

func lastEventAge(id uint32) *stat.PanelBuilder {
	return stat.NewPanelBuilder().
		Id(id).
		Title("Last event age").
		Description("Time since the newest Docker event the exporter applied (the daemon's clock against Prometheus's). A quiet daemon has no events: a large age alone is no fault, with docker_up 0 it is.").
		Datasource(datasource).
		WithTarget(query("A", "time() - docker_exporter_last_event_timestamp_seconds", "{{instance}}").Instant()).
		Span(4).Height(6).
		ReduceOptions(lastValue()).
		ColorMode(common.BigValueColorModeNone).
		GraphMode(common.BigValueGraphModeNone).
		Orientation(common.VizOrientationAuto).
		Unit("s")
}

func reconnects(id uint32) *timeseries.PanelBuilder {
	return timeseries.NewPanelBuilder().
		Id(id).
		Title("Event stream reconnects").
		Description("Times the exporter re-established the daemon's event stream after losing it, per interval. Each is followed by a replay of the missed events and a resync.").
		Datasource(datasource).
		WithTarget(query("A",
			"increase(docker_exporter_event_stream_reconnects_total[$__rate_interval])",
			"{{instance}}")).
		Span(8).Height(6).
		Unit("short").
		Min(0).
		DrawStyle(common.GraphDrawStyleBars).
		FillOpacity(60).
		Legend(legendList()).
		Tooltip(tooltipAll())
}

func resyncs(id uint32) *timeseries.PanelBuilder {
	return timeseries.NewPanelBuilder().
		Id(id).
		Title("Resyncs and what they mended").
		Description("Resyncs per interval by reason (interval, or fell_behind: events reached the exporter late), and the containers they found wrong by kind (missing, ghost, changed). Corrections mean the daemon dropped events for a reader that fell behind: give the exporter more CPU.").
		Datasource(datasource).
		WithTarget(query("A",
			"sum by (instance, reason) (increase(docker_exporter_resyncs_total[$__rate_interval]))",
			"resyncs {{reason}} {{instance}}")).
		WithTarget(query("B",
			"sum by (instance, kind) (increase(docker_exporter_resync_corrections_total[$__rate_interval]))",
			"mended {{kind}} {{instance}}")).
		Span(24).Height(6).
		Unit("short").
		Min(0).
		DrawStyle(common.GraphDrawStyleBars).
		FillOpacity(60).
		Legend(legendList()).
		Tooltip(tooltipAll())
}

func daemonInfo(id uint32) *table.PanelBuilder {
	return table.NewPanelBuilder().
		Id(id).
		Title("Daemon").
		Description("The daemon each exporter watches, read at its last (re)connect.").
		Datasource(datasource).
		WithTarget(query("A", "docker_daemon_info", "").
			Instant().
			Format(prometheus.PromQueryFormatTable)).
		Span(24).Height(4).
		Footer(common.NewTableFooterOptionsBuilder().Show(false).Reducer([]string{"sum"})).
		WithTransformation(dashboard.DataTransformerConfig{
			Id: "organize",
			Options: map[string]any{
				"excludeByName": map[string]bool{"Time": true, "Value": true, "__name__": true},
				"indexByName": map[string]int{
					"instance": 0, "version": 1, "api_version": 2,
					"os": 3, "arch": 4, "kernel_version": 5, "job": 6,
				},
			},
		})
}
