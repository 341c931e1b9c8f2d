// A DAG laid out by dagre and drawn as SVG. Nodes are links (keyboard-focusable) coloured by status.

import { useEffect, useMemo, useState } from "preact/hooks";

type Dagre = typeof import("@dagrejs/dagre");
// dagre is most of the bundle and only the flow view needs it: load it on first use.
let dagreModule: Promise<Dagre> | null = null;
const loadDagre = (): Promise<Dagre> => (dagreModule ??= import("@dagrejs/dagre"));

export interface GraphNode {
  id: string;
  label: string;
  sub: string;
  status: string;
  href?: string;
}

const W = 150;
const H = 46;

export function Dag({
  nodes,
  edges,
  label,
}: {
  nodes: GraphNode[];
  edges: [string, string][];
  label: string;
}) {
  const [dagre, setDagre] = useState<Dagre | null>(null);
  useEffect(() => {
    void loadDagre().then(setDagre);
  }, []);
  const laid = useMemo(() => {
    if (!dagre) return null;
    const { Graph, layout } = dagre;
    const g = new Graph<
      {
        rankdir: string;
        nodesep: number;
        ranksep: number;
        marginx: number;
        marginy: number;
        width?: number;
        height?: number;
      },
      { width: number; height: number; x: number; y: number },
      { points?: { x: number; y: number }[] }
    >();
    g.setGraph({ rankdir: "LR", nodesep: 24, ranksep: 48, marginx: 8, marginy: 8 });
    g.setDefaultEdgeLabel(() => ({}));
    for (const n of nodes) g.setNode(n.id, { width: W, height: H, x: 0, y: 0 });
    for (const [from, to] of edges) if (g.hasNode(from) && g.hasNode(to)) g.setEdge(from, to);
    layout(g);
    const info = g.graph();
    return {
      width: info.width ?? 0,
      height: info.height ?? 0,
      nodes: nodes.map((n) => ({ ...n, x: g.node(n.id).x, y: g.node(n.id).y })),
      edges: g.edges().map((e) => ({
        key: `${e.v}->${e.w}`,
        points: g.edge(e).points ?? [],
      })),
    };
  }, [dagre, nodes, edges]);
  if (!laid) return <p aria-busy="true">Laying out the graph…</p>;
  return (
    <svg
      class="dag"
      role="group"
      aria-label={label}
      viewBox={`0 0 ${laid.width} ${laid.height}`}
      width={laid.width}
      height={laid.height}
    >
      <defs>
        <marker
          id="arrow"
          viewBox="0 0 10 10"
          refX="9"
          refY="5"
          markerWidth="7"
          markerHeight="7"
          orient="auto"
        >
          <path d="M0,0 L10,5 L0,10 z" class="arrow" />
        </marker>
      </defs>
      {laid.edges.map((e) => (
        <polyline
          key={e.key}
          class="edge"
          marker-end="url(#arrow)"
          points={e.points.map((p) => `${p.x},${p.y}`).join(" ")}
        />
      ))}
      {laid.nodes.map((n) => {
        const body = (
          <>
            <title>{`${n.label} (${n.sub}): ${n.status}`}</title>
            <rect x={n.x - W / 2} y={n.y - H / 2} width={W} height={H} rx={6} />
            <text x={n.x} y={n.y - 4} text-anchor="middle" class="node-label">
              {n.label.length > 20 ? `${n.label.slice(0, 19)}…` : n.label}
            </text>
            <text x={n.x} y={n.y + 13} text-anchor="middle" class="node-sub">
              {n.status}
            </text>
          </>
        );
        return n.href ? (
          <a
            key={n.id}
            href={n.href}
            class={`node s-${n.status}`}
            data-node={n.id}
            aria-label={`${n.label}: ${n.status}`}
          >
            {body}
          </a>
        ) : (
          <g key={n.id} class={`node s-${n.status}`} data-node={n.id}>
            {body}
          </g>
        );
      })}
    </svg>
  );
}
