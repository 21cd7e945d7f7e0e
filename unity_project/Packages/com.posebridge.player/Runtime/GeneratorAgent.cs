// A minimal Agent whose only job is to make the Academy exchange with Python: ML-Agents only talks to
// Python in a step in which some agent requested a decision, and side-channel messages (the run config,
// the player's status) only travel inside those exchanges. It observes the player's progress, so the
// numbers are also visible to any ML-Agents tooling, and ignores its one continuous action.
using Unity.MLAgents;
using Unity.MLAgents.Actuators;
using Unity.MLAgents.Sensors;
using UnityEngine;

namespace PoseBridge.Runtime
{
    public sealed class GeneratorAgent : Agent
    {
        public const string BehaviorName = "PoseBridgeGenerator";
        public const int ObservationSize = 4;

        [Tooltip("Seconds of real time between decision requests once the player runs.")]
        public float decisionIntervalSeconds = 0.25f;

        /// <summary>Set by the player: frames sent, frames planned, recent fps, and 1 when done.</summary>
        public long FramesSent, FramesPlanned;
        public float Fps;
        public bool Done;

        float lastRequest = float.NegativeInfinity;

        public override void Initialize()
        {
            MaxStep = 0; // never ends an episode on its own
        }

        public override void CollectObservations(VectorSensor sensor)
        {
            sensor.AddObservation((float)FramesSent);
            sensor.AddObservation((float)FramesPlanned);
            sensor.AddObservation(Fps);
            sensor.AddObservation(Done ? 1f : 0f);
        }

        public override void OnActionReceived(ActionBuffers actions)
        {
            // Control flows through the config side channel; the action is unused.
        }

        public override void Heuristic(in ActionBuffers actionsOut)
        {
            var continuous = actionsOut.ContinuousActions;
            for (int i = 0; i < continuous.Length; i++) continuous[i] = 0f;
        }

        /// <summary>
        /// Requests a decision now (when a status must reach Python soon) or on the interval; true when
        /// it did, so that the caller queues at most one status message per exchange.
        /// </summary>
        public bool Tick(bool urgent)
        {
            float now = Time.realtimeSinceStartup;
            if (!urgent && now - lastRequest < decisionIntervalSeconds) return false;
            lastRequest = now;
            RequestDecision();
            return true;
        }
    }
}
