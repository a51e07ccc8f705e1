"""The parametric right hand: parameters, kinematics, capsule surface, renderer, dataset keypoints, fit-to-joints."""
